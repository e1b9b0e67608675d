"""The ``conf/`` folder of recipes and loading one recipe with ``key=value`` overrides (OmegaConf dot-list)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONF_DIR", "config_path", "instantiate", "instantiate_config", "load_yaml"]

#: recipes shipped with the source tree (neurodecode is installed from it with ``pip install -e .``)
CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


def _known(cfg: Any, key: str) -> bool:
    """Whether a dotted key names an entry of ``cfg`` (mandatory ``???`` entries included)."""
    from omegaconf import DictConfig, OmegaConf

    parent_key, _, last = key.rpartition(".")
    parent = cfg if not parent_key else OmegaConf.select(cfg, parent_key, default=None)
    return isinstance(parent, DictConfig) and last in parent.keys()


def load_yaml(path: Path, overrides: Sequence[str] = ()) -> Any:
    """Load a recipe and merge ``key=value`` overrides; overrides naming keys the recipe lacks are refused."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(path)
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ValueError(f"{path}: overrides: expected key=value items, got {bad}")
    unknown = [o.split("=", 1)[0] for o in overrides if not _known(cfg, o.split("=", 1)[0])]
    if unknown:
        raise ValueError(f"{path}: overrides name unknown keys {unknown}; expected key=value with keys among "
                         f"{sorted(cfg.keys())}")
    return OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))


def config_path(group: str, name: str | Path) -> Path:
    """``conf/GROUP/NAME.yaml``, or ``name`` itself when it is a YAML path; a clear error listing the known names."""
    path = Path(name) if str(name).endswith((".yaml", ".yml")) else CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no {group} config {str(name)!r} (known: {known})")
    return path


def instantiate(cfg: Any, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(cfg, _convert_="all")``, re-raising the target's own error (which names the file
    and the field) instead of Hydra's wrapper around it."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate as hydra_instantiate

    try:
        return hydra_instantiate(cfg, _convert_="all", **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, (ValueError, TypeError, KeyError, OSError, RuntimeError)):
            raise err.__cause__ from None
        raise


def instantiate_config(group: str, name: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Instantiate ``conf/GROUP/NAME.yaml`` (``_target_`` + arguments) with ``key=value`` overrides (Hydra)."""
    path = config_path(group, name)
    cfg = load_yaml(path, overrides)
    if "_target_" not in cfg:
        raise ValueError(f"{path}: field '_target_': expected the class or function to build, got keys {list(cfg)}")
    return instantiate(cfg)
