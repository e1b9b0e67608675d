"""Saving fitted estimators and torch modules without pickle: parameters as JSON, arrays as ``.npz`` (read with
``allow_pickle=False``), weights as safetensors — so loading a checkpoint never runs code.

* :func:`save_estimator` / :func:`load_estimator` — a fitted scikit-learn-style estimator (a ``Pipeline`` of them
  included): its ``get_params()`` and every fitted attribute (name ending in ``_``) that is an array, a number, a
  string, a list, a tuple or a dict of those, or a nested estimator. The class is checked against the ``_target_``
  allowlist (:func:`neurodecode.core.configs.check_targets`) before it is imported. An estimator that holds
  something else defines ``_persist() -> (params, modules)`` and ``_restore(params, modules)`` (e.g. an encoder
  wrapping a torch model).
* :func:`save_module` / :func:`load_module` — a neurodecode torch model with a ``config`` (its constructor
  arguments): ``<name>.json`` + ``<name>.safetensors``, rebuilt through the allowlisted config.

* :func:`save_component` / :func:`load_component` — **the one protocol of every checkpoint component** (diffusers'
  ``save_pretrained``/``from_pretrained`` idea): ``save_component(obj, folder)`` writes a folder with a
  ``component.json`` naming the object's class and how it was written, ``load_component(folder)`` rebuilds it.
  A class with its own file layout defines ``_save_to(folder)`` and a classmethod ``_load_from(folder, device)``
  (torch aligners: safetensors + JSON; the target space: JSON + ``.npz``); a component built from a config (a
  generative head) is written as that config plus its weights; anything else as a fitted estimator (above).

Imports nothing above ``neurodecode.core``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.configs import check_targets, instantiate

__all__ = ["COMPONENT_FORMAT", "dumps", "load_component", "load_estimator", "load_module", "module_config",
           "save_component", "save_estimator", "save_module", "strict", "write_component"]


def strict(value: Any) -> Any:
    """``value`` with NaN/Inf floats replaced by None and numpy scalars by Python ones, so that it is strict JSON."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """Strict JSON (``allow_nan=False``): NaN/Inf become null (see :func:`strict`)."""
    return json.dumps(strict(value), allow_nan=False, **kwargs)


def _class_path(obj: Any) -> str:
    """The public import path of ``type(obj)``: private submodules dropped where the parent exports the class.

    ``sklearn.preprocessing._data.StandardScaler`` is written as ``sklearn.preprocessing.StandardScaler``, the path
    the target allowlist names.
    """
    import importlib

    cls = type(obj)
    parts = cls.__module__.split(".")
    while parts and parts[-1].startswith("_"):
        parent = ".".join(parts[:-1])
        try:
            if getattr(importlib.import_module(parent), cls.__qualname__, None) is not cls:
                break
        except ImportError:
            break
        parts = parts[:-1]
    return f"{'.'.join(parts)}.{cls.__qualname__}"


def _resolve_class(path: str, where: str) -> Any:
    from hydra.utils import get_class

    from neurodecode.core.registry import current_path

    check_targets({"_target_": path}, where)
    return get_class(current_path(path))


class _Writer:
    """Collects the arrays and modules of one estimator description."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name, self.arrays, self.n_modules = folder, name, {}, 0

    def encode(self, value: Any, where: str) -> Any:
        from neurodecode.core.epochs import Channels

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, (int, float, np.integer, np.floating)):
            value = value.item() if isinstance(value, np.generic) else value
            return value if not isinstance(value, float) or np.isfinite(value) else {"__float__": repr(value)}
        if isinstance(value, np.ndarray):
            if value.dtype == object and value.size and all(isinstance(v, str) for v in value.flat):
                value = value.astype(str)            # string labels (classes_): a unicode array, read back as one
            if value.dtype == object:
                raise TypeError(f"{where}: an object array cannot be stored without pickle")
            key = f"a{len(self.arrays)}"
            self.arrays[key] = value
            return {"__array__": key}
        if isinstance(value, tuple):
            return {"__tuple__": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
        if isinstance(value, list):
            return [self.encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise TypeError(f"{where}: a dict with non-string keys cannot be stored as JSON")
            return {"__dict__": {k: self.encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
        if isinstance(value, Channels):
            return {"__channels__": {"names": list(value.names), "types": list(value.types),
                                     "pos": self.encode(value.pos, f"{where}.pos"), "coord_frame": value.coord_frame,
                                     "units": list(value.units), "bads": list(value.bads),
                                     "regions": list(value.regions)}}
        if hasattr(value, "get_params") and hasattr(value, "fit"):
            return self.estimator(value, where)
        if hasattr(value, "state_dict") and hasattr(value, "config"):
            name = f"{self.name}.module{self.n_modules}"
            self.n_modules += 1
            save_module(self.folder, name, value)
            return {"__module__": name}
        raise TypeError(f"{where}: a {type(value).__name__} cannot be stored without pickle (arrays, numbers, "
                        "strings, lists, dicts, estimators and neurodecode models can)")

    def estimator(self, est: Any, where: str) -> dict[str, Any]:
        if hasattr(est, "_persist"):
            params, modules = est._persist()
            return {"__estimator__": _class_path(est), "params": self.encode(params, f"{where}.params"),
                    "modules": {k: self.encode(m, f"{where}.{k}") for k, m in modules.items()}}
        params = est.get_params(deep=False)
        fitted = {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}
        return {"__estimator__": _class_path(est),
                "params": {k: self.encode(v, f"{where}.{k}") for k, v in params.items()},
                "fitted": {k: self.encode(v, f"{where}.{k}") for k, v in fitted.items()}}


class _Reader:
    def __init__(self, folder: Path, arrays: Mapping[str, np.ndarray], where: str) -> None:
        self.folder, self.arrays, self.where = folder, arrays, where

    def decode(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.decode(v) for v in value]
        if not isinstance(value, dict):
            return value
        if "__array__" in value:
            return self.arrays[value["__array__"]]
        if "__float__" in value:
            return float(value["__float__"])
        if "__tuple__" in value:
            return tuple(self.decode(v) for v in value["__tuple__"])
        if "__dict__" in value:
            return {k: self.decode(v) for k, v in value["__dict__"].items()}
        if "__channels__" in value:
            from neurodecode.core.epochs import Channels

            c = value["__channels__"]
            return Channels(c["names"], c["types"], self.decode(c["pos"]), c["coord_frame"], c["units"], c["bads"],
                            c["regions"])
        if "__module__" in value:
            return load_module(self.folder, value["__module__"])
        if "__estimator__" in value:
            return self.estimator(value)
        raise ValueError(f"{self.where}: expected an encoded value, got keys {sorted(value)}")

    def estimator(self, spec: Mapping[str, Any]) -> Any:
        cls = _resolve_class(spec["__estimator__"], self.where)
        params = {k: self.decode(v) for k, v in spec["params"].items()} if "fitted" in spec else \
            self.decode(spec["params"])
        if "modules" in spec:
            return cls._restore(params, {k: self.decode(v) for k, v in spec["modules"].items()})
        est = cls(**params)
        for k, v in spec["fitted"].items():
            setattr(est, k, self.decode(v))
        return est


def save_estimator(est: Any, folder: str | os.PathLike, name: str) -> None:
    """Write ``<name>.json`` (+ ``<name>.npz`` arrays, ``<name>.module*`` models) describing a fitted estimator."""
    folder = Path(folder)
    writer = _Writer(folder, name)
    spec = writer.estimator(est, name)
    (folder / f"{name}.json").write_text(json.dumps({"format": "neurodecode-estimator/1", "estimator": spec},
                                                    indent=1, allow_nan=False))
    np.savez(folder / f"{name}.npz", **writer.arrays)


def load_estimator(folder: str | os.PathLike, name: str) -> Any:
    """Rebuild an estimator written by :func:`save_estimator` (no pickle; classes checked against the allowlist)."""
    folder = Path(folder)
    path = folder / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (the checkpoint is incomplete)")
    try:
        meta = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: expected JSON, got {err}") from None
    if meta.get("format") != "neurodecode-estimator/1":
        raise ValueError(f"{path}: field 'format': expected 'neurodecode-estimator/1', got {meta.get('format')!r}")
    with np.load(folder / f"{name}.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    return _Reader(folder, arrays, str(path)).estimator(meta["estimator"])


def module_config(model: Any) -> dict[str, Any]:
    """``{"_target_": class path, **model.config}``: what rebuilds a neurodecode model."""
    if not hasattr(model, "config"):
        raise TypeError(f"field 'model': expected a neurodecode model with a .config, got {type(model).__name__}")
    return {"_target_": f"{type(model).__module__}.{type(model).__name__}", **model.config}


def save_module(folder: str | os.PathLike, name: str, model: Any) -> None:
    """``<name>.json`` (the model's config) and ``<name>.safetensors`` (its weights)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    (folder / f"{name}.json").write_text(json.dumps(module_config(model), indent=1, allow_nan=False))
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()},
              folder / f"{name}.safetensors")


def load_module(folder: str | os.PathLike, name: str, device: str = "cpu") -> Any:
    """Rebuild a model written by :func:`save_module` (its config's class checked against the allowlist)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / f"{name}.json"
    cfg = json.loads(path.read_text())
    model = instantiate(cfg, str(path))
    missing, unexpected = model.load_state_dict(load_file(folder / f"{name}.safetensors", device=device), strict=False)
    if missing or unexpected:
        raise ValueError(f"{folder / f'{name}.safetensors'}: weights do not match the model: missing {missing}, "
                         f"unexpected {unexpected}")
    return model.to(device).eval()


#: what ``component.json`` says about its folder
COMPONENT_FORMAT = "neurodecode-component/1"


def save_component(obj: Any, folder: str | os.PathLike, *, build: Mapping[str, Any] | None = None,
                   weights: bool = True) -> Path:
    """Write ``obj`` into the (new or empty) folder ``folder``: ``component.json`` plus its files.

    Parameters
    ----------
    obj : object
        A fitted estimator, a class with ``_save_to``/``_load_from``, or (with ``build``) an ``nn.Module``.
    build : mapping, optional
        The ``_target_`` config that builds ``obj`` (a head's): the object is rebuilt from it, and its weights
        (``weights=True``: trained here) are saved beside the config and loaded into the rebuilt object —
        published weights are not copied (``weights=False``: the config's own loading finds them).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise FileExistsError(f"{folder}: expected a new or empty folder for a checkpoint component")
    from neurodecode.core.registry import class_path

    meta: dict[str, Any] = {"format": COMPONENT_FORMAT, "class": class_path(obj)}
    if build is not None:
        from safetensors.torch import save_model

        meta.update(layout="built", build=dict(build), weights=bool(weights))
        if weights:                      # save_model: tied weights (a language model's embeddings) written once
            save_model(obj, str(folder / "weights.safetensors"))
    elif hasattr(type(obj), "_save_to"):
        meta["layout"] = "own"
        obj._save_to(folder)
    else:
        meta["layout"] = "estimator"
        save_estimator(obj, folder, "estimator")
    (folder / "component.json").write_text(dumps(meta, indent=1))
    return folder


def write_component(obj: Any, path: str | os.PathLike, *, overwrite: bool = False,
                    build: Mapping[str, Any] | None = None) -> Path:
    """:func:`save_component` into ``path`` atomically: written beside it and renamed into place once complete (an
    existing folder is replaced only with ``overwrite``, and removed last); one writer per path at a time."""
    import shutil

    from neurodecode.core.files import WriteLock, publish_dir, temporary_dir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with WriteLock(path):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: already there; pass overwrite=True to replace it")
        tmp = temporary_dir(path)
        try:
            save_component(obj, tmp, build=build)
            publish_dir(tmp, path, overwrite=overwrite)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return path


def load_component(folder: str | os.PathLike, *, device: str | None = None) -> Any:
    """Rebuild what :func:`save_component` wrote (every class checked against the allowlist before import; no
    pickle)."""
    folder = Path(folder)
    path = folder / "component.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing (not a checkpoint component, or an incomplete copy)")
    try:
        meta = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: expected JSON, got {err}") from None
    if meta.get("format") != COMPONENT_FORMAT:
        raise ValueError(f"{path}: field 'format': expected {COMPONENT_FORMAT!r}, got {meta.get('format')!r}")
    layout = meta.get("layout")
    if layout == "estimator":
        return load_estimator(folder, "estimator")
    if layout == "built":
        from safetensors.torch import load_model

        build = dict(meta["build"])
        if device is not None and "device" in build:
            build["device"] = device
        obj = instantiate(build, f"{path} field 'build'")
        if meta.get("weights", True):
            weights = folder / "weights.safetensors"
            if not weights.is_file():
                raise FileNotFoundError(f"{weights}: missing, though {path} field 'weights' says it is there")
            load_model(obj, str(weights), device=device or "cpu")
        return obj
    if layout == "own":
        cls = _resolve_class(meta["class"], f"{path} field 'class'")
        return cls._load_from(folder, device=device or "cpu")
    raise ValueError(f"{path}: field 'layout': expected 'estimator', 'built' or 'own', got {layout!r}")
