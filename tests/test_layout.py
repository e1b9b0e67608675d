"""The package tree is the data flow: stage packages, imports only downward, no cycles, short functions, every
package shipped (including conf/ and data_manifests/), old import paths kept for one release."""

import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "neurodecode"
#: the stages in data-flow order; a module may import its own stage and the ones before it
STAGES = ["core", "loaders", "encoders", "alignment", "heads", "evaluation", "pipeline", "cli"]
MAX_FUNCTION_LINES = 80


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every neurodecode import in a file, module level or inside functions."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            out += [(node.lineno, t) for t in targets if t.startswith("neurodecode")]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("neurodecode")]
    return out


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def _resolve(module: str, modules: dict[str, Path]) -> str:
    """The module file an import names (``from neurodecode.core import epochs`` → ``neurodecode.core.epochs``)."""
    while module not in modules and "." in module:
        module = module.rpartition(".")[0]
    return module


def test_every_stage_is_a_package_that_says_what_it_holds_and_may_import():
    top = sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__"))
    assert top == sorted(STAGES), top
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((PACKAGE / stage / "__init__.py").read_text()))
        assert doc and "May import" in doc, stage
    loose = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "_compat.py", "_version.py"], loose  # nothing outside the stages


def test_stages_import_only_the_stages_before_them():
    modules = _modules()
    upward = []
    for name, path in modules.items():
        stage = _stage(name)
        if stage is None:
            continue
        for line, target in _imports(path):
            other = _stage(target)
            if other is None:
                if target.split(".")[1:2] not in ([], ["_version"]):
                    upward.append(f"{path.relative_to(ROOT)}:{line} imports {target} (outside the stages)")
            elif STAGES.index(other) > STAGES.index(stage):
                upward.append(f"{path.relative_to(ROOT)}:{line} ({stage}) imports {target} ({other})")
    assert not upward, "\n".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def import_graph() -> dict[str, set[str]]:
    """Module → modules it imports (function-level imports included; a package's ``__init__`` is not counted as
    importing its parent)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = {_resolve(t, modules) for _, t in _imports(path)}
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")} & set(modules)
    return graph


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert cycles == [], cycles


def test_no_private_names_cross_modules():
    crossing = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("neurodecode"):
                crossing += [f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{a.name}"
                             for a in node.names if a.name.startswith("_") and a.name not in ("__version__", "_compat")]
    assert not crossing, "\n".join(crossing)


def function_lengths() -> list[tuple[int, str]]:
    """(lines, 'file:function') of every function and method of the package, docstrings included."""
    out = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(ROOT)}:{node.name}"))
    return sorted(out, reverse=True)


def test_no_function_longer_than_80_lines():
    long = [f"{where} ({n} lines)" for n, where in function_lengths() if n > MAX_FUNCTION_LINES]
    assert not long, "\n".join(long)


def test_pyproject_ships_every_package_and_the_config_folders():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(neurodecode(?:\.[a-z_]+)*)"', text.split("packages = [", 1)[1].split("]", 1)[0]))
    found = {_module_name(p) for p in PACKAGE.rglob("__init__.py")} | {"neurodecode.conf", "neurodecode.data_manifests"}
    assert listed == found, (sorted(listed - found), sorted(found - listed))
    for folder in ("conf", "data_manifests"):
        assert (ROOT / folder / "__init__.py").is_file(), folder


@pytest.mark.parametrize(("old", "name", "new"), [
    ("neurodecode.epochs", "EpochSet", "neurodecode.core.epochs"),
    ("neurodecode.riemann", "TangentSpace", "neurodecode.encoders.riemann"),
    ("neurodecode.fmri", "load_mat", "neurodecode.loaders.precomputed"),
    ("neurodecode.models.mae", "SignalMAE", "neurodecode.encoders.models.mae"),
    ("neurodecode.models.subjects", "planted_subjects", "neurodecode.loaders.simulate"),
    ("neurodecode.reconstruct", "reconstruct", "neurodecode.pipeline.decoding"),
    ("neurodecode.heads.common", "write_trials", "neurodecode.heads.writing"),
    ("neurodecode.encoders.vae", "BetaVAEFeatures", "neurodecode.encoders.deep"),
    ("neurodecode.encoders.brain_module", "BrainModuleEncoder", "neurodecode.encoders.deep"),
    ("neurodecode.alignment.losses", "SoftCLIPLoss", "neurodecode.encoders.models.contrastive"),
    ("neurodecode.evaluation.retrieval", "two_way_identification", "neurodecode.core.scores"),
    ("neurodecode.evaluation.comparison", "paired_difference", "neurodecode.core.scores"),
    ("neurodecode.pipeline.selection", "AutoAlignment", "neurodecode.alignment.selection"),
])
def test_old_import_paths_warn_and_still_work(old, name, new):
    import importlib

    sys.modules.pop(old, None)
    with pytest.warns(FutureWarning, match=rf"{re.escape(old)} moved to .*{re.escape(new)}"):
        module = importlib.import_module(old)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


def test_renamed_names_and_moved_functions_warn_and_still_work():
    import importlib

    from neurodecode.alignment.encoding_models import RidgeEncodingModel, TransformerEncodingModel
    from neurodecode.core.configs import is_allowed
    from neurodecode.core.registry import current_path
    from neurodecode.loaders.glm import trial_responses

    sys.modules.pop("neurodecode.alignment.encoding", None)
    with pytest.warns(FutureWarning, match=r"neurodecode.alignment.encoding moved to .*encoding_models"):
        assert importlib.import_module("neurodecode.alignment.encoding").RidgeEncoder is RidgeEncodingModel
    with pytest.warns(FutureWarning, match=r"neurodecode.alignment.TransformerEncoder is now TransformerEncodingModel"):
        from neurodecode.alignment import TransformerEncoder
    assert TransformerEncoder is TransformerEncodingModel
    with pytest.warns(FutureWarning, match=r"neurodecode.loaders.fmri.trial_responses moved to neurodecode.loaders.glm"):
        from neurodecode.loaders.fmri import trial_responses as old
    assert old is trial_responses
    # checkpoints and configs written with the old paths still build (the paths are resolved, then allowed)
    assert current_path("neurodecode.alignment.encoding.RidgeEncoder") == \
        "neurodecode.alignment.encoding_models.RidgeEncodingModel"
    assert current_path("neurodecode.encoders.vae.BetaVAEFeatures") == "neurodecode.encoders.deep.BetaVAEFeatures"
    assert is_allowed("neurodecode.models.mae.SignalMAE") and not is_allowed("neurodecode.models.mae.os")
    assert not is_allowed("neurodecodeevil.x.Y") and not is_allowed("builtins.eval")


def test_old_builders_and_convenience_methods_warn_and_still_work(tmp_path):
    import numpy as np

    from neurodecode import EpochSet, build, load
    from neurodecode.alignment import RidgeAlignment, make_aligner
    from neurodecode.heads import build_head

    with pytest.warns(FutureWarning, match="use neurodecode.build"):
        assert isinstance(make_aligner("ridge"), RidgeAlignment)
    with pytest.warns(FutureWarning, match="use neurodecode.build"):
        assert build_head("tiny_unclip", ["embed_dim=8"]).latent.dim == 8
    assert isinstance(build("aligner", "ridge"), RidgeAlignment)
    ep = EpochSet.from_array(np.zeros((2, 3, 4), np.float32), 10.0)
    with pytest.warns(FutureWarning, match=r"EpochSet.save is deprecated; use neurodecode.save"):
        ep.save(tmp_path / "e.h5")
    assert load(tmp_path / "e.h5") == ep
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # the new paths do not warn
        build("aligner", "ridge")


def test_import_of_the_package_loads_no_stage_above_core():
    code = ("import sys, neurodecode; print(sorted({m.split('.')[1] for m in sys.modules "
            "if m.startswith('neurodecode.') and m.count('.') >= 1}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert set(eval(out)) <= {"core", "_compat", "_version"}, out  # noqa: S307 - our own printed list


def test_library_code_logs_instead_of_printing():
    printing = []
    for path in PACKAGE.rglob("*.py"):
        if path.is_relative_to(PACKAGE / "cli"):
            continue                        # the command line prints its results
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                printing.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not printing, printing


def test_verbose_and_quiet_set_the_log_level(capsys):
    import logging

    from neurodecode.cli import main
    from neurodecode.core.logs import logger, set_log_level

    old = logger.level
    try:
        assert main(["--quiet", "data", "list"]) == 0 and logger.level == logging.WARNING
        assert main(["-v", "data", "list"]) == 0 and logger.level == logging.DEBUG
        set_log_level("info")
        assert logger.level == logging.INFO
        with pytest.raises(ValueError, match="field 'level': expected one of"):
            set_log_level("loud")
    finally:
        logger.setLevel(old)


def test_no_two_modules_share_a_file_name():
    """``encoders/vae.py`` beside ``encoders/models/vae.py`` made every traceback ambiguous: one name, one module."""
    names: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name not in ("__init__.py", "__main__.py"):
            names.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    assert not {n: p for n, p in names.items() if len(p) > 1}


def test_no_constructor_writes_a_config_dict_by_hand():
    """Models record their constructor arguments with ConfigMixin; heads set their provenance through
    HeadBase._describe; a DecodingPipeline keeps the training run's resolved config it is given — nothing else
    assigns ``self.config``."""
    writes = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                for sub in (target.elts if isinstance(target, ast.Tuple) else [target]):
                    if isinstance(sub, ast.Attribute) and sub.attr == "config" and getattr(sub.value, "id", "") == "self":
                        writes.add(str(path.relative_to(ROOT)))
    assert writes == {"neurodecode/core/registry.py", "neurodecode/heads/base.py",
                      "neurodecode/pipeline/checkpoint.py"}, writes
