"""What neurodecode may build from a config or a checkpoint, and how its models record their own configs.

Two ideas, each written once (diffusers' ``ConfigMixin`` / ``register_to_config`` and braindecode's ``models_dict``):

* :class:`ConfigMixin` — a base for neurodecode's torch models. A subclass's ``__init__`` is wrapped so that the
  arguments it was called with (defaults filled in) are recorded in ``self.config``, a plain JSON-able dict from
  which ``type(model)(**model.config)`` rebuilds the same architecture. An argument that is itself a component
  (an object with a ``config``)
  is recorded as that component's config — by reference, so that a component that grows (a subject layer added)
  is recorded as it is now; so is an argument of the name of a :class:`ConfigMixin` attribute the constructor built
  from it (a dict, or ``None`` for a default component). No constructor writes its config by hand. Subclassing also **registers** the class.
* :func:`register` — a class decorator for scikit-learn-style estimators and other classes that checkpoints
  rebuild by their class path (and for the few foreign classes a recipe holds, :data:`FOREIGN`).

:func:`registered` is the set of registered class paths: the ``_target_`` allowlist of
:mod:`neurodecode.core.configs` is that set, the targets of the shipped configs and the old paths of
:data:`MOVED` — nothing kept by hand. A ``neurodecode.*`` target is looked up after importing its own module (our
code, definitions only), so a checkpoint can name a class whose module was not imported yet.

:data:`MOVED` is the one table of old module paths (0.1 → 0.2 stage packages, and 0.2 → 0.3 renames); old
``_target_`` paths in configs and checkpoints are resolved through it (:func:`current_path`), and
``neurodecode._compat`` serves the old modules from it with a warning.

Imports nothing from neurodecode.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["FOREIGN", "MOVED", "ConfigMixin", "class_path", "current_path", "register", "registered"]

T = TypeVar("T")

#: class paths of checkpoint-rebuildable objects, filled by :class:`ConfigMixin` subclasses and :func:`register`
_REGISTRY: dict[str, Any] = {}

#: foreign classes that fitted neurodecode recipes hold and checkpoints therefore rebuild
FOREIGN = ("sklearn.pipeline.Pipeline", "sklearn.preprocessing.StandardScaler")

#: old module → modules that hold its names now (searched in order); one release of warnings, then removed
MOVED: dict[str, tuple[str, ...]] = {
    # 0.1 flat modules → 0.2 stage packages
    "neurodecode.epochs": ("neurodecode.core.epochs", "neurodecode.core.validation"),
    "neurodecode.storage": ("neurodecode.core.storage",),
    "neurodecode.mne_convert": ("neurodecode.core.mne_convert",),
    "neurodecode.datasets": ("neurodecode.core.datasets",),
    "neurodecode.harmonize": ("neurodecode.core.harmonize",),
    "neurodecode.training": ("neurodecode.core.training",),
    "neurodecode.configs": ("neurodecode.core.configs",),
    "neurodecode.meeg": ("neurodecode.loaders.meeg",),
    "neurodecode.preprocessing": ("neurodecode.loaders.preprocessing",),
    "neurodecode.fmri": ("neurodecode.loaders.fmri", "neurodecode.loaders.glm", "neurodecode.loaders.rois",
                         "neurodecode.loaders.precomputed"),
    "neurodecode.simulate": ("neurodecode.loaders.simulate",),
    "neurodecode.manifests": ("neurodecode.loaders.manifests",),
    "neurodecode.spd": ("neurodecode.encoders.spd",),
    "neurodecode.riemann": ("neurodecode.encoders.riemann",),
    "neurodecode.features": ("neurodecode.encoders.features",),
    "neurodecode.models": ("neurodecode.encoders.models", "neurodecode.alignment.prior"),
    "neurodecode.models.mae": ("neurodecode.encoders.models.mae",),
    "neurodecode.models.tokenizers": ("neurodecode.encoders.models.tokenizers",),
    "neurodecode.models.mlp": ("neurodecode.encoders.models.mlp",),
    "neurodecode.models.subjects": ("neurodecode.encoders.models.subjects", "neurodecode.alignment.adaptation",
                                    "neurodecode.loaders.simulate"),
    "neurodecode.models.prior": ("neurodecode.alignment.prior",),
    "neurodecode.losses": ("neurodecode.encoders.models.contrastive",),
    "neurodecode.embeddings": ("neurodecode.alignment.embeddings",),
    "neurodecode.retrieval": ("neurodecode.core.scores",),
    "neurodecode.metrics": ("neurodecode.evaluation.metrics",),
    "neurodecode.report": ("neurodecode.evaluation.report",),
    "neurodecode.train": ("neurodecode.pipeline.fitting", "neurodecode.core.configs", "neurodecode.cli.train"),
    "neurodecode.reconstruct": ("neurodecode.pipeline.decoding", "neurodecode.evaluation.scoring"),
    "neurodecode.demo": ("neurodecode.cli.demo",),
    "neurodecode.example": ("neurodecode.cli.example",),
    "neurodecode.heads.common": ("neurodecode.heads.base", "neurodecode.heads.writing"),
    # 0.2 → 0.3: one module per job, no two modules with one file name, no names that clash with torch's
    "neurodecode.encoders.vae": ("neurodecode.encoders.deep",),
    "neurodecode.encoders.mvcnet": ("neurodecode.encoders.deep",),
    "neurodecode.encoders.brain_module": ("neurodecode.encoders.deep",),
    "neurodecode.alignment.losses": ("neurodecode.encoders.models.contrastive",),
    "neurodecode.alignment.encoding": ("neurodecode.alignment.encoding_models",),
    "neurodecode.alignment.brain_encoder": ("neurodecode.alignment.encoding_models",),
    "neurodecode.evaluation.retrieval": ("neurodecode.core.scores",),
    "neurodecode.evaluation.comparison": ("neurodecode.core.scores",),
    "neurodecode.pipeline.selection": ("neurodecode.alignment.selection",),
}

#: names that were renamed, not only moved: (old module, old name) → new name in the modules of :data:`MOVED`
RENAMED: dict[tuple[str, str], str] = {
    ("neurodecode.alignment.brain_encoder", "TransformerEncoder"): "TransformerEncodingModel",
    ("neurodecode.alignment.encoding", "RidgeEncoder"): "RidgeEncodingModel",
}


def class_path(obj: Any) -> str:
    """``module.QualName`` of a class or function (of ``type(obj)`` for an instance)."""
    cls = obj if inspect.isclass(obj) or inspect.isfunction(obj) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def register(obj: T) -> T:
    """Class (or function) decorator: checkpoints and configs may rebuild ``obj`` by its class path."""
    _REGISTRY[class_path(obj)] = obj
    return obj


def _module_of(path: str) -> str | None:
    """The importable neurodecode module part of a dotted path (``neurodecode.a.b.C`` → ``neurodecode.a.b``); None
    for paths outside the package or under an old (moved) module."""
    parts = path.split(".")[:-1]
    if not parts or parts[0] != "neurodecode":
        return None
    if any(".".join(parts[:k]) in MOVED for k in range(2, len(parts) + 1)):
        return None
    while len(parts) > 1:
        module = ".".join(parts)
        try:
            if importlib.util.find_spec(module) is not None:
                return module
        except (ImportError, ValueError):
            pass
        parts = parts[:-1]
    return None


def current_path(path: str) -> str:
    """Where an old ``_target_`` path (a module of :data:`MOVED`, or a name re-exported by a stage package) lives
    now; other paths are returned as they are. Imports only neurodecode's own modules."""
    if not isinstance(path, str) or not path.startswith("neurodecode."):
        return path
    module, _, name = path.rpartition(".")
    if module in MOVED:
        new_name = RENAMED.get((module, name), name)
        for target in MOVED[module]:
            try:
                found = getattr(importlib.import_module(target), new_name, None)
            except ImportError:
                continue
            if found is not None:
                return class_path(found)
        return path
    if module in ("neurodecode.alignment", "neurodecode.pipeline", "neurodecode.encoders", "neurodecode.heads"):
        import warnings

        with warnings.catch_warnings():             # a package's deprecated re-export is still a known name
            warnings.simplefilter("ignore", FutureWarning)
            found = getattr(importlib.import_module(module), name, None)
        if found is not None and (inspect.isclass(found) or inspect.isfunction(found)):
            return class_path(found)
    return path


def registered(path: str | None = None) -> frozenset[str] | bool:
    """All registered class paths, or (with ``path``) whether ``path`` is registered — after importing the
    neurodecode module that would define it, so that registration has happened."""
    if path is None:
        return frozenset(_REGISTRY) | frozenset(FOREIGN)
    if path in FOREIGN or path in _REGISTRY:
        return True
    module = _module_of(path)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError:
            return False
    return path in _REGISTRY


def _plain(value: Any) -> Any:
    """An argument as it goes into a config: tuples as lists, mappings as dicts, components as their config."""
    if hasattr(value, "config") and isinstance(getattr(value, "config"), dict) and not inspect.isclass(value):
        return value.config
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _recording_init(init: Callable[..., None]) -> Callable[..., None]:
    signature = inspect.signature(init)

    @functools.wraps(init)
    def wrapped(self: Any, *args: Any, **kwargs: Any) -> None:
        outer = not self.__dict__.get("_recording_config", False)
        if outer:
            object.__setattr__(self, "_recording_config", True)
        try:
            init(self, *args, **kwargs)
        finally:
            if outer:
                object.__delattr__(self, "_recording_config")
        if not outer:
            return
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        config: dict[str, Any] = {}
        for name, value in list(bound.arguments.items())[1:]:
            kind = signature.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                config.update({k: _plain(v) for k, v in value.items()})
                continue
            if kind is inspect.Parameter.VAR_POSITIONAL:
                continue
            attribute = self.__dict__.get("_modules", {}).get(name, self.__dict__.get(name))
            config[name] = attribute.config if isinstance(attribute, ConfigMixin) else _plain(value)
        self.config = config

    return wrapped


class ConfigMixin:
    """Records constructor arguments in ``self.config`` and registers the class (see the module docstring).

    Attributes
    ----------
    config : dict
        The constructor arguments (defaults included), JSON-able; ``type(self)(**self.config)`` rebuilds the
        architecture.
    """

    config: dict[str, Any]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _recording_init(cls.__dict__["__init__"])     # type: ignore[method-assign]
        register(cls)
