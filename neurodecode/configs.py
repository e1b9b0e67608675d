"""The ``conf/`` folder of recipes and loading one recipe with ``key=value`` overrides (OmegaConf dot-list)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONF_DIR", "load_yaml"]

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
