"""Pages generated from the code before Sphinx reads the sources: the API reference (``api.rst``: every name in
``neurodecode.__all__`` and in each stage package's ``__all__``, documented once, where it is canonically imported)
and the configuration reference (``configuration.md``: every group, option and default of ``conf/``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import socket
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ["core", "loaders", "encoders", "alignment", "heads", "evaluation", "pipeline", "cli"]


def online(host: str = "docs.python.org", timeout: float = 2.0) -> bool:
    """Whether the other libraries' documentation can be reached (for intersphinx)."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _first_line(obj) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""


def _public(module) -> list[str]:
    """A module's public names: its ``__all__``, else what it defines without a leading underscore."""
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, o in vars(module).items() if not n.startswith("_") and getattr(o, "__module__", None)
                 == module.__name__ and (inspect.isclass(o) or inspect.isfunction(o))]
    return [n for n in names if not n.startswith("__")]


def _submodules(package) -> list[str]:
    if not hasattr(package, "__path__"):
        return []
    out = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if info.name.rsplit(".", 1)[1].startswith("_"):
            continue
        out.append(info.name)
        out += _submodules(importlib.import_module(info.name)) if info.ispkg else []
    return out


def api_entries() -> list[tuple[str, str, list[str], list[tuple[str, list[str]]]]]:
    """Per stage: (package, summary, the names it exports as their canonical paths, [(module, the public names it
    defines)]). Each object is documented once, in the module that defines it; a package's table links there."""
    entries, documented = [], set()
    for package_name in ["neurodecode"] + [f"neurodecode.{s}" for s in STAGES]:
        package = importlib.import_module(package_name)
        modules = []
        subs = [] if package_name == "neurodecode" else [package_name] + _submodules(package)
        for module_name in subs:
            module = importlib.import_module(module_name)
            names = []
            for name in _public(module):
                obj = getattr(module, name, None)
                home = getattr(obj, "__module__", None)
                if inspect.isclass(obj) or inspect.isfunction(obj):
                    if home == module_name:
                        names.append(name)
                elif not inspect.ismodule(obj) and name.isupper():
                    names.append(name)                 # constants listed in __all__
            if names:
                modules.append((module_name, sorted(set(names), key=str.lower)))
                documented |= {f"{module_name}.{n}" for n in names}
        entries.append((package_name, _first_line(package), modules))
    out = []
    for package_name, summary, modules in entries:       # the package's exports, linked to where they are documented
        package = importlib.import_module(package_name)
        exported = set()
        for name in _public(package):
            obj = getattr(package, name)
            home = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__name__', name)}"
            if home in documented:
                exported.add(home)
        out.append((package_name, summary, sorted(exported, key=lambda n: n.rsplit(".", 1)[1].lower()), modules))
    return out


def canonical_names() -> dict[str, str]:
    """Short and exported names → the path where the object is documented (unique short names only)."""
    short: dict[str, set[str]] = {}
    out: dict[str, str] = {}
    for package_name, _, _, modules in api_entries():
        package = importlib.import_module(package_name)
        for module_name, names in modules:
            for n in names:
                short.setdefault(n, set()).add(f"{module_name}.{n}")
        for name in _public(package):
            obj = getattr(package, name)
            home = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__name__', name)}"
            out[f"{package_name}.{name}"] = home
    for n, homes in short.items():
        if len(homes) == 1:
            out[n] = next(iter(homes))
    for module_name, names in ((m, ns) for _, _, _, mods in api_entries() for m, ns in mods):
        for n in names:                             # a stage-level path to a name defined in a submodule
            out.setdefault(f"{module_name.rsplit('.', 1)[0]}.{n}", f"{module_name}.{n}")
    return out


def write_api(path: Path = HERE / "api.rst") -> None:
    lines = ["API reference", "=============", "",
             "Every public name, by stage: the package tree is the data flow, and a stage imports only the stages "
             "before it. Each stage's table lists what the package exports (``from neurodecode.core import "
             "EpochSet``); each name is documented once, in the module that defines it.", ""]
    for package_name, summary, exported, modules in api_entries():
        title = f"``{package_name}``"
        lines += [title, "-" * len(title), "", f".. automodule:: {package_name}", "   :no-members:", ""]
        if exported:
            lines += [f"Exported by ``{package_name}``: "
                      + ", ".join(f":obj:`~{n}`" for n in exported) + ".", ""]
        subpackages = sorted({m.rsplit(".", 1)[0] for m, _ in modules} - {package_name, package_name.rsplit(".", 1)[0]})
        for sub_package in subpackages:            # a package inside a stage (neurodecode.encoders.models)
            lines += [f".. py:module:: {sub_package}", ""]
        for module_name, names in modules:
            sub = f"``{module_name}``"
            if module_name == package_name:        # defined in the package itself (the 0.2 builders, deprecated)
                lines += [f"Defined in ``{package_name}`` itself:", ""]
            else:
                lines += [sub, "~" * len(sub), "", f".. automodule:: {module_name}", "   :no-members:", ""]
            lines += [f".. currentmodule:: {module_name}", "", ".. autosummary::", "   :toctree: generated/",
                      "   :nosignatures:", ""]
            lines += [f"   {n}" for n in names] + [""]
    _write(path, "\n".join(lines))


def _comment(text: str) -> str:
    """The leading comment block of a YAML file, as prose."""
    out = []
    for line in text.splitlines():
        if line.startswith("#"):
            out.append(line.lstrip("#").strip())
        elif line.strip() == "" and not out:
            continue
        else:
            break
    return " ".join(out)


def write_configuration(path: Path = HERE / "configuration.md") -> None:
    conf = ROOT / "conf"
    lines = ["# Configuration reference", "",
             "Every config group of `conf/` with every option and its defaults, generated from the files themselves "
             "when the site is built. Pick an option with `group=option` on the command line "
             "(`neurodecode train encoder=tiny_mae`), change a value with `group.key=value`, and add a key the "
             "option does not have with `+group.key=value`; `neurodecode train --cfg job` prints the composed "
             "config. See [training runs](guide/training.md) and [benchmarks](benchmarks.md).", ""]
    for top in sorted(conf.glob("*.yaml")):
        lines += [f"## `{top.name}` (the `neurodecode {top.stem}` entry point)", "", _comment(top.read_text()), "",
                  f"```{{literalinclude}} ../conf/{top.name}", ":language: yaml", "```", ""]
    for group in sorted(p for p in conf.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        options = sorted(group.rglob("*.yaml"))
        if not options:
            continue
        lines += [f"## `{group.name}`", "", f"{len(options)} option(s): "
                  + ", ".join(f"`{o.relative_to(group).with_suffix('')}`" for o in options) + ".", ""]
        for option in options:
            rel = option.relative_to(conf)
            lines += [f"### `{group.name}={option.relative_to(group).with_suffix('')}`", "",
                      _comment(option.read_text()) or "(no description)", "",
                      f"```{{literalinclude}} ../conf/{rel.as_posix()}", ":language: yaml", "```", ""]
    _write(path, "\n".join(lines))


def _write(path: Path, text: str) -> None:
    """Write only when the text changed (Sphinx rebuilds what changed)."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def write_all() -> None:
    write_api()
    write_configuration()


if __name__ == "__main__":
    write_all()
