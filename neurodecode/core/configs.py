"""The config registry: every configured object of neurodecode is a YAML file of ``conf/<group>/<name>.yaml``.

As in open_clip, the folder *is* the registry: :func:`build` instantiates ``conf/GROUP/NAME.yaml`` (or a YAML path)
with ``key=value`` overrides and refuses unknown names by listing the known ones; :func:`options` lists a group.
``conf/`` and ``data_manifests/`` sit at the top of the repository and are shipped inside the package (the wheel maps
them to ``neurodecode.conf`` and ``neurodecode.data_manifests``), found through ``importlib.resources``, so an
installed wheel and an editable checkout behave the same.

Instantiation never runs code the user did not ask for: every ``_target_`` — of a shipped config, a user's YAML
file, a checkpoint's ``model_index.json`` and component files or an encoder's ``checkpoint.json`` — is checked against an allowlist before
Hydra imports anything. The allowlist is derived, not kept by hand: the targets of the shipped configs, the classes
registered in :mod:`neurodecode.core.registry` (every :class:`~neurodecode.core.registry.ConfigMixin` model and
``@register`` estimator), their old paths (:data:`~neurodecode.core.registry.MOVED`), and what
:func:`allow_target` adds. Imports nothing from neurodecode outside ``neurodecode.core``.
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONF_DIR", "GROUPS", "allow_target", "allowed_targets", "build", "check_targets", "compose", "is_allowed",
           "conf_dir", "config_path", "instantiate", "load_config", "load_yaml", "options", "resource_dir"]


def resource_dir(package: str) -> Path:
    """The folder of a data package shipped with neurodecode (``"neurodecode.conf"``, ``"neurodecode.data_manifests"``)."""
    root = importlib.resources.files(package)
    path = Path(str(root))
    if not path.is_dir():  # pragma: no cover - zipped installs are not supported by Hydra either
        raise FileNotFoundError(f"{package}: expected a folder of YAML files inside the installed package, got {root}")
    return path


def conf_dir() -> Path:
    """The ``conf/`` folder (Hydra config groups)."""
    return resource_dir("neurodecode.conf")


#: the ``conf/`` folder (kept for scripts that read it directly)
CONF_DIR = conf_dir()


def _run_seed(default: int, *, _parent_: Any, _root_: Any) -> int:
    """``${run_seed:0}``: the top-level ``seed`` of the config this option sits in (a training run's ``seed=``,
    swept by ``--multirun seed=0,1,2``), or ``default`` when the option is loaded on its own."""
    if _parent_ is _root_ or "seed" not in _root_:
        return int(default)
    return int(_root_["seed"])


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("run_seed"):
        OmegaConf.register_new_resolver("run_seed", _run_seed)


_register_resolvers()

#: config groups of ``conf/`` that hold buildable objects (``_target_`` configs)
GROUPS = ("aligner", "cross_subject", "data", "encoder", "features", "head", "tokenizer")

_EXTRA_TARGETS: set[str] = set()


def _walk_targets(cfg: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every ``_target_`` in a nested config (mappings and lists)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=False)
    if isinstance(cfg, Mapping):
        for key, value in cfg.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, value
            else:
                yield from _walk_targets(value, where)
    elif isinstance(cfg, (list, tuple)):
        for i, value in enumerate(cfg):
            yield from _walk_targets(value, f"{path}[{i}]")


@functools.lru_cache(maxsize=1)
def _shipped_targets() -> frozenset[str]:
    from omegaconf import OmegaConf

    found = set()
    for path in conf_dir().rglob("*.yaml"):
        found.update(str(v) for _, v in _walk_targets(OmegaConf.load(path)))
    return frozenset(found)


def allowed_targets() -> frozenset[str]:
    """The ``_target_`` paths :func:`instantiate` accepts that are known now: the shipped configs' targets, the
    registered classes (:mod:`neurodecode.core.registry`; those of modules not imported yet are found on demand by
    :func:`is_allowed`) and the ones added with :func:`allow_target`."""
    from neurodecode.core.registry import registered

    return _shipped_targets() | registered() | frozenset(_EXTRA_TARGETS)


def is_allowed(target: Any) -> bool:
    """Whether ``target`` may be instantiated: a shipped config's target, a registered class (its neurodecode
    module imported first), one added with :func:`allow_target`, or an old path of any of these."""
    from neurodecode.core.registry import current_path, registered

    if not isinstance(target, str) or not target:
        return False
    for path in dict.fromkeys((current_path(target), target)):
        if path in _shipped_targets() or path in _EXTRA_TARGETS or registered(path):
            return True
    return False


def allow_target(target: str) -> None:
    """Accept ``target`` (a dotted import path, e.g. ``"mylab.models.MyEncoder"``) in configs from now on."""
    if not isinstance(target, str) or not target or target.startswith(".") or " " in target:
        raise ValueError(f"field 'target': expected a dotted import path such as 'package.module.Class', got {target!r}")
    _EXTRA_TARGETS.add(target)


def check_targets(cfg: Any, where: str = "config") -> None:
    """Raise ``ValueError`` naming the key when a ``_target_`` of ``cfg`` is not allowed (checked before import)."""
    for key, value in _walk_targets(cfg):
        if not is_allowed(value):
            allowed = allowed_targets()
            raise ValueError(
                f"{where}: field '{key}': expected a _target_ among neurodecode's configured classes and functions "
                f"(e.g. {sorted(allowed)[:3]} ...), got {value!r}; instantiating it could run arbitrary code. If you "
                "wrote this config yourself and trust the target, call "
                f"neurodecode.core.configs.allow_target({value!r}) first")


def _modernise(cfg: Any) -> Any:
    """A plain copy of ``cfg`` with old ``_target_`` paths replaced by their current ones."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    from neurodecode.core.registry import current_path

    if isinstance(cfg, (DictConfig, ListConfig)):
        cfg = OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, Mapping):
        return {k: (current_path(v) if k == "_target_" else _modernise(v)) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [_modernise(v) for v in cfg]
    return cfg


def instantiate(cfg: Any, where: str = "config", **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(cfg, _convert_="all", **kwargs)`` after :func:`check_targets`, re-raising the
    target's own error (which names the file and the field) instead of Hydra's wrapper around it."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    check_targets(cfg, where)
    try:
        return hydra_instantiate(_modernise(cfg), _convert_="all", **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, TypeError) and "unexpected keyword argument" in str(cause):
            raise _unexpected_key(cfg, where, cause) from None
        if isinstance(cause, (ValueError, TypeError, KeyError, OSError, RuntimeError)):
            raise cause from None
        missing = _missing_module(err)
        if missing:
            target = str(cfg.get("_target_", "?")) if hasattr(cfg, "get") else "?"
            raise ModuleNotFoundError(f"{where}: {target} needs the package {missing!r}, which is not installed "
                                      f"(pip install {missing.replace('_', '-')}, or neurodecode's extra that "
                                      "names it, e.g. pip install 'neurodecode[moabb]')") from None
        raise


def _missing_module(err: BaseException) -> str | None:
    """The top-level package a failed import names, anywhere in an exception's chain (Hydra wraps it)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, ModuleNotFoundError) and err.name:
            return err.name.split(".")[0]
        err = err.__cause__ or err.__context__
    return None


def _unexpected_key(cfg: Any, where: str, err: TypeError) -> ValueError:
    """A config key its target does not take, named with the keys it does take."""
    import inspect
    import re

    from hydra.utils import get_method

    key = (re.findall(r"unexpected keyword argument '(\w+)'", str(err)) or ["?"])[0]
    target = str(cfg.get("_target_", "?")) if hasattr(cfg, "get") else "?"
    try:
        params = [p for p in inspect.signature(get_method(target)).parameters if p not in ("self", "cls")]
    except (ValueError, TypeError, ImportError, AttributeError):
        params = []
    path = (re.findall(r"config '([\w.]+)'", where) or ["<group>"])[0]
    return ValueError(f"{where}: field '{key}': {target} does not take it (it takes {params}); an experiment may have "
                      f"set it for another option of the group — remove it with ~{path}.{key} or pick an option "
                      "that takes it")


def _known(cfg: Any, key: str) -> bool:
    """Whether a dotted key names an entry of ``cfg`` (mandatory ``???`` entries included)."""
    from omegaconf import DictConfig, OmegaConf

    parent_key, _, last = key.rpartition(".")
    parent = cfg if not parent_key else OmegaConf.select(cfg, parent_key, default=None)
    return isinstance(parent, DictConfig) and last in parent.keys()


def load_yaml(path: Path, overrides: Sequence[str] = ()) -> Any:
    """Load a YAML config and merge ``key=value`` overrides; overrides naming keys it lacks are refused."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # yaml / omegaconf errors of several kinds
        raise ValueError(f"{path}: expected a readable YAML config, got {type(err).__name__}: {err}") from None
    cfg = _with_defaults(cfg, path)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"{path}: overrides: expected key=value items, got {bad}")
    unknown = [o.split("=", 1)[0] for o in overrides if not _known(cfg, o.split("=", 1)[0])]
    if unknown:
        raise ValueError(f"{path}: overrides name unknown keys {unknown}; expected key=value with keys among "
                         f"{sorted(cfg.keys())}")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))


def _with_defaults(cfg: Any, path: Path) -> Any:
    """A config's Hydra defaults list of options of its own group placed at a key (``- ridge@candidates.ridge``),
    merged as Hydra composes it, so that such a file builds outside a training run too (``aligner=auto``)."""
    from omegaconf import OmegaConf

    if "defaults" not in cfg:
        return cfg
    merged = OmegaConf.create({})
    for entry in cfg.defaults:
        if entry == "_self_":
            continue
        name, _, key = str(entry).partition("@")
        if not isinstance(entry, str) or not key or "/" in name:
            raise ValueError(f"{path}: field 'defaults': expected entries NAME@KEY of options beside it, got {entry!r}")
        OmegaConf.update(merged, key, load_yaml(path.parent / f"{name}.yaml"), merge=False)
    body = OmegaConf.create({k: v for k, v in cfg.items() if k != "defaults"})
    return OmegaConf.merge(merged, body)


def options(group: str) -> list[str]:
    """The option names of a config group (the YAML files of ``conf/GROUP/``)."""
    folder = conf_dir() / group
    if not folder.is_dir():
        known = sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and not p.name.startswith("_"))
        raise ValueError(f"field 'group': expected a config group among {known}, got {group!r}")
    return sorted(p.stem for p in folder.glob("*.yaml"))


def config_path(group: str, name: str | Path) -> Path:
    """``conf/GROUP/NAME.yaml``, or ``name`` itself when it is a YAML path; a clear error listing the known names."""
    if str(name).endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such {group} config file")
        return path
    known = options(group)
    if str(name) not in known:
        raise FileNotFoundError(f"{conf_dir() / group / f'{name}.yaml'}: no {group} config {str(name)!r} "
                                f"(known: {known})")
    return conf_dir() / group / f"{name}.yaml"


def load_config(group: str, name: str | Path, overrides: Sequence[str] = ()) -> Any:
    """The config ``conf/GROUP/NAME.yaml`` (or a YAML path) with ``key=value`` overrides, not instantiated."""
    return load_yaml(config_path(group, name), overrides)


def build(group: str, name: str | Path | Mapping[str, Any], overrides: Sequence[str] = (), **kwargs: Any) -> Any:
    """Build any configured object: ``conf/GROUP/NAME.yaml`` (or a YAML path, or a config mapping with
    ``_target_``), with ``key=value`` overrides and keyword arguments passed to the target.

    Parameters
    ----------
    group : str
        A config group of ``conf/`` (``aligner``, ``encoder``, ``head``, ``features``, ...).
    name : str, path or mapping
        An option of the group (:func:`options` lists them), a YAML file, or a config mapping.
    overrides : sequence of str
        ``key=value`` changes to the option.
    **kwargs
        Passed to the target's constructor.

    Returns
    -------
    obj : object
        The built estimator, head or model. Every ``_target_`` is checked against the allowlist first.

    Examples
    --------
    ``build("aligner", "mlp", ["trainer.max_epochs=50"])``, ``build("head", "tiny_unclip")``,
    ``build("encoder", "tiny_mae")``, ``build("features", "tangent_space")``.
    """
    from omegaconf import OmegaConf

    if isinstance(name, Mapping):
        where = f"{group} config"
        cfg = OmegaConf.merge(OmegaConf.create(dict(name)), OmegaConf.from_dotlist(list(overrides)))
    else:
        path = config_path(group, name)
        where = str(path)
        cfg = load_yaml(path, overrides)
    if "_target_" not in cfg:
        raise ValueError(f"{where}: field '_target_': expected the class or function to build, got keys {list(cfg)}")
    return instantiate(cfg, where, **kwargs)


def normalize_overrides(overrides: Sequence[str]) -> list[str]:
    """Overrides with an empty head slot spelled as the README and ``train.yaml`` spell it.

    ``head@heads.images=null`` (Hydra refuses ``null`` for a group) and ``~head@heads.images`` both become
    ``~head@heads.images ++heads.images=null``: the slot's head is removed, and so are the keys an experiment set
    for it (``heads.images.image_size``), which would otherwise be a head config without a ``_target_``. Other
    ``GROUP=null`` overrides of a config group become ``~GROUP``.
    """
    out: list[str] = []
    for item in overrides:
        key, eq, value = item.partition("=")
        if key.startswith("~") and not key.startswith("~~"):
            group = key[1:]
        elif eq and value == "null" and _is_group(key):
            group = key
        else:
            out.append(item)
            continue
        if not _is_group(group):                    # ~some.key deletes a value: Hydra's own meaning
            out.append(item)
            continue
        out.append(item if key.startswith("~") else f"~{group}")
        if group.startswith("head@heads."):
            out.append(f"++{group.split('@', 1)[1]}=null")
    return out


def _is_group(key: str) -> bool:
    """Whether ``key`` (``aligner``, ``head@heads.images``, ``hydra/launcher``) names a config group of conf/."""
    name = key.split("@", 1)[0]
    return bool(name) and "." not in name and (conf_dir() / name).is_dir()


def compose(overrides: Sequence[str] = (), config_name: str = "train", return_hydra_config: bool = False) -> Any:
    """Compose ``conf/<config_name>.yaml`` with Hydra overrides (Hydra's compose API, after
    ``normalize_overrides``); errors get a hint.

    Parameters
    ----------
    overrides : sequence of str
        Hydra overrides, as on the command line: ``group=option``, ``key=value``, ``+new.key=value``.
    config_name : str
        ``"train"`` (``neurodecode train``) or ``"benchmark"`` (``neurodecode benchmark``).
    return_hydra_config : bool
        Keep the ``hydra`` node (its callbacks, launcher, run folder).

    Returns
    -------
    cfg : omegaconf.DictConfig
        The composed config, as the command would run it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3"):
        try:
            return hydra_compose(config_name, overrides=normalize_overrides(overrides),
                                 return_hydra_config=return_hydra_config)
        except (HydraException, OmegaConfBaseException) as err:
            hint = COMPOSE_HINT if config_name == "train" else COMPOSE_HINT.replace(
                "`neurodecode train --cfg job` (resolved config) or `neurodecode train --help` (groups and options)",
                f"`neurodecode {config_name} --cfg`")
            raise ValueError(f"{err}\n{hint}") from None


COMPOSE_HINT = ("Hint: a key that the config does not have is refused; add a new key with +key=value, see what "
                "exists with `neurodecode train --cfg job` (resolved config) or `neurodecode train --help` (groups "
                "and options).")
