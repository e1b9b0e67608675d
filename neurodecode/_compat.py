"""Old import paths keep working for one release (0.2), with a FutureWarning naming the new one (pyRiemann's way).

Before the stage packages, neurodecode was 32 flat modules (``neurodecode.epochs``, ``neurodecode.riemann``,
``neurodecode.models.mae``, ...); 0.3 gave every module one job and one unique file name (``encoders.vae`` →
``encoders.deep``, ``alignment.encoding`` → ``alignment.encoding_models``, ...).
:data:`~neurodecode.core.registry.MOVED` (one table, also used to resolve old ``_target_`` paths) maps each old
module to the modules that now hold its names; a meta-path finder serves the old name as a thin module that warns once and looks names up there, so user scripts,
old pickles and ``python -m neurodecode.train`` keep working without a file per old module. The convenience methods
``EpochSet.save`` / ``.to_mne`` / ``.from_mne`` and ``EpochCollection.save`` (they made the epoch format import its
own storage) are attached here, deprecated, in favour of ``neurodecode.save`` / ``to_mne`` / ``from_mne``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
import warnings
from typing import Any

from neurodecode.core.registry import MOVED, RENAMED

#: old modules that could be run with ``python -m``
_MAIN = {"neurodecode.train": "neurodecode.cli.train"}


class _MovedModule(types.ModuleType):
    """An old module name: attributes come from the modules that hold them now."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        new_name = RENAMED.get((self.__name__, name), name)
        for target in MOVED[self.__name__]:
            module = importlib.import_module(target)
            if hasattr(module, new_name):
                return getattr(module, new_name)
        raise AttributeError(f"module {self.__name__!r} (moved to {', '.join(MOVED[self.__name__])}) has no "
                             f"attribute {name!r}")

    def __dir__(self) -> list[str]:
        names: set[str] = set()
        for target in MOVED[self.__name__]:
            names.update(getattr(importlib.import_module(target), "__all__", ()))
        return sorted(names)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = _MovedModule(spec.name)
        module.__path__ = [] if spec.name == "neurodecode.models" else None  # the old subpackage keeps submodules
        if module.__path__ is None:
            del module.__path__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        warnings.warn(f"{module.__name__} moved to {' / '.join(MOVED[module.__name__])} (the stage packages of "
                      "neurodecode 0.2 and 0.3); the old path works for one release", FutureWarning, stacklevel=3)

    def get_code(self, fullname: str) -> Any:
        """For ``python -m neurodecode.train``: run the new entry point."""
        if fullname not in _MAIN:
            return None
        return compile(f"import sys\nfrom {_MAIN[fullname]} import main\nsys.exit(main())\n", fullname, "exec")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, _Loader(), is_package=fullname == "neurodecode.models")


def _deprecated_method(name: str, replacement: str, fn: Any) -> Any:
    def method(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{name} is deprecated; use {replacement}", FutureWarning, stacklevel=2)
        return fn(*args, **kwargs)

    method.__name__ = name.rsplit(".", 1)[-1]
    method.__doc__ = f"Deprecated: {replacement}."
    return method


def install() -> None:
    """Register the finder for old module names and attach the deprecated convenience methods (idempotent)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
    from neurodecode.core.epochs import EpochCollection, EpochSet
    from neurodecode.core.mne_convert import from_mne, to_mne
    from neurodecode.core.storage import save

    EpochSet.save = _deprecated_method("EpochSet.save", "neurodecode.save(epochs, path)", save)
    EpochSet.to_mne = _deprecated_method("EpochSet.to_mne", "neurodecode.to_mne(epochs)", to_mne)
    EpochSet.from_mne = staticmethod(_deprecated_method("EpochSet.from_mne", "neurodecode.from_mne(mne_epochs)",
                                                        from_mne))
    EpochCollection.save = _deprecated_method("EpochCollection.save", "neurodecode.save(collection, path)", save)
