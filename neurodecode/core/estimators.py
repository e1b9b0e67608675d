"""The one way neurodecode's estimators check their parameters and train their networks.

* **Declared parameter checks** (scikit-learn's ``_parameter_constraints`` idea, without its private module): an
  estimator lists, per constructor parameter, what it accepts — a tuple of allowed values, a type, or a callable
  returning an error string — in ``_parameter_constraints``; :func:`check_params` checks them at the start of
  ``fit`` and raises one ``ValueError`` naming the class, the field, what is allowed and what was given.
* :class:`TorchEstimator` — the base of every estimator that trains a torch network with
  :class:`~neurodecode.core.training.Trainer` (nilearn's ``BaseMasker.fit → _fit`` shape). ``fit`` is written
  here once: checked parameters, fitted attributes of an earlier fit dropped, seeding, the Trainer settings (one
  convention: a ``trainer=`` mapping over the class's :attr:`~TorchEstimator.trainer_defaults`, plus ``seed`` and
  ``device``), the dataset, ``Trainer.fit`` and ``history_``. A subclass defines only

  - ``_prepare(X, y) -> tuple of tensors`` — validation and scaling of its inputs (the rows of the dataset);
  - ``_build(tensors) -> nn.Module`` — its network for those inputs;
  - ``_loss(model, batch, trainer)`` — the Trainer objective on one batch (a scalar, or a dict with ``"loss"``);

  and its outputs (``transform``/``predict``) on ``self.model_``.

Imports nothing from neurodecode but ``neurodecode.core``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator

__all__ = ["TRAINER_FIELDS", "Interval", "TorchEstimator", "check_params", "trainer_settings"]

#: the keys a ``trainer=`` mapping may hold (the :class:`~neurodecode.core.training.Trainer` fields)
TRAINER_FIELDS = ("max_epochs", "batch_size", "lr", "weight_decay", "schedule", "warmup_steps", "accumulate",
                  "precision", "grad_clip", "drop_last", "checkpoint_dir", "checkpoint_every", "device",
                  "num_workers", "progress")


class Interval:
    """A numeric constraint: ``Interval(0, 1)`` is [0, 1]; ``closed="neither"`` (0, 1); ``None`` an open end;
    ``integer=True`` asks for an int."""

    def __init__(self, low: float | None, high: float | None, closed: str = "both", integer: bool = False) -> None:
        self.low, self.high, self.closed, self.integer = low, high, closed, integer

    def __call__(self, value: Any) -> str | None:
        kinds = (int, np.integer) if self.integer else (int, float, np.integer, np.floating)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"{'an integer' if self.integer else 'a number'} in {self}"
        lo_ok = self.low is None or (value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (value <= self.high if self.closed in ("both", "right") else value < self.high)
        return None if lo_ok and hi_ok and np.isfinite(value) else f"a value in {self}"

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{low}, {high}{right}"


def _violation(rule: Any, value: Any) -> str | None:
    """What ``value`` should have been under ``rule`` (None when it is fine)."""
    if isinstance(rule, tuple) and all(not isinstance(r, type) and not callable(r) or r is None for r in rule):
        return None if value in rule else f"one of {list(rule)}"
    rules = rule if isinstance(rule, list) else [rule]
    wants = []
    for r in rules:
        if r is None:
            if value is None:
                return None
            wants.append("None")
        elif isinstance(r, type):
            if isinstance(value, r) and not (r in (int, float) and isinstance(value, bool)):
                return None
            wants.append(f"a {r.__name__}")
        elif isinstance(r, tuple):
            if value in r:
                return None
            wants.append(f"one of {list(r)}")
        else:
            problem = r(value)
            if problem is None:
                return None
            wants.append(problem)
    return " or ".join(wants)


def check_params(est: Any) -> None:
    """Check ``est``'s parameters against its class's ``_parameter_constraints`` (a mapping of parameter name to a
    tuple of allowed values, a type, a callable ``value -> error or None``, ``None`` for None, or a list of these
    any of which may hold); one ``ValueError`` naming every parameter that breaks its rule."""
    constraints = getattr(type(est), "_parameter_constraints", {})
    problems = []
    for name, rule in constraints.items():
        value = getattr(est, name)
        wanted = _violation(rule, value)
        if wanted is not None:
            problems.append(f"field '{name}': expected {wanted}, got {value!r}")
    if problems:
        raise ValueError(f"{type(est).__name__}: " + "; ".join(problems))


def trainer_settings(trainer: Mapping[str, Any] | None, defaults: Mapping[str, Any], where: str,
                     **fixed: Any) -> dict[str, Any]:
    """Trainer settings: ``defaults`` overridden by the ``trainer`` mapping, then ``fixed`` (the seed, and the
    device of an estimator); unknown keys are refused with the list of valid ones. A ``seed`` in the mapping is the
    0.2 spelling: it still wins, with a FutureWarning (pass ``seed=``)."""
    user = dict(trainer or {})
    if "seed" in user:
        warnings.warn(f"{where}: trainer={{'seed': ...}} is deprecated; pass seed= instead", FutureWarning,
                      stacklevel=3)
        fixed["seed"] = int(user.pop("seed"))
    unknown = sorted(set(user) - set(TRAINER_FIELDS) - set(fixed))
    if unknown:
        raise ValueError(f"{where}: field 'trainer': unknown settings {unknown}; expected keys among "
                         f"{sorted(TRAINER_FIELDS)}")
    return {"progress": False, **dict(defaults), **user, **fixed}


def _is_mapping_or_none(value: Any) -> str | None:
    return None if value is None or isinstance(value, Mapping) else "a mapping of Trainer settings or None"


class TorchEstimator(BaseEstimator):
    """Base of the estimators that train a torch network (see the module docstring).

    Subclasses take ``trainer`` (a mapping of :class:`~neurodecode.core.training.Trainer` settings over
    :attr:`trainer_defaults`), ``seed`` and ``device`` among their parameters.

    Attributes
    ----------
    model_ : nn.Module
        The trained network (in eval mode).
    history_ : list of dict
        The Trainer's per-epoch log (``train_loss`` and the objective's other entries).
    """

    #: Trainer settings of this estimator (a ``trainer=`` mapping overrides them key by key)
    trainer_defaults: ClassVar[Mapping[str, Any]] = {"max_epochs": 100, "batch_size": 32, "lr": 1e-3,
                                                     "weight_decay": 0.0}
    #: old flattened parameters still accepted for one release: parameter → the ``trainer`` key it sets
    _deprecated_trainer_params: ClassVar[Mapping[str, str]] = {}
    _parameter_constraints: ClassVar[dict[str, Any]] = {"trainer": _is_mapping_or_none,
                                                        "seed": Interval(0, None, integer=True)}

    # -- what a subclass defines ---------------------------------------------------------------------------
    def _prepare(self, X: Any, y: Any) -> tuple[Any, ...]:
        """Validated, scaled training tensors (one row per sample each); set scaling attributes here."""
        raise NotImplementedError

    def _build(self, tensors: tuple[Any, ...]) -> Any:
        """The network for these inputs (called right after the torch seed is set)."""
        raise NotImplementedError

    def _loss(self, model: Any, batch: Any, trainer: Any) -> Any:
        """The Trainer objective: loss of ``model`` (maybe DDP-wrapped) on one batch of the tensors."""
        raise NotImplementedError

    # -- written once --------------------------------------------------------------------------------------
    def _settings(self) -> dict[str, Any]:
        """The Trainer settings of this fit: :attr:`trainer_defaults` < deprecated flat parameters < ``trainer``,
        with ``seed`` and ``device`` from the estimator's own parameters."""
        user = dict(self.trainer or {})
        fixed = {"seed": int(self.seed), "device": str(getattr(self, "device", None) or "cpu")}
        for key in ("seed", "device"):
            if key in user:
                warnings.warn(f"{type(self).__name__}(trainer={{'{key}': ...}}) is deprecated; pass {key}= to the "
                              "estimator itself", FutureWarning, stacklevel=4)
                fixed[key] = type(fixed[key])(user.pop(key))
        flat = {key: getattr(self, name) for name, key in self._deprecated_trainer_params.items()
                if getattr(self, name, None) is not None}
        if flat:
            old = ", ".join(f"{name}=..." for name in self._deprecated_trainer_params if getattr(self, name, None)
                            is not None)
            warnings.warn(f"{type(self).__name__}({old}) is deprecated; pass trainer={flat!r}", FutureWarning,
                          stacklevel=4)
        return trainer_settings({**flat, **user}, self.trainer_defaults, type(self).__name__, **fixed)

    def _drop_fitted(self) -> None:
        for name in [k for k in vars(self) if k.endswith("_") and not k.startswith("_")]:
            delattr(self, name)

    def fit(self, X: Any, y: Any = None, resume: bool = False) -> TorchEstimator:
        """Train on ``X`` (and ``y`` where the estimator is supervised); ``resume=True`` continues an interrupted
        run from ``trainer['checkpoint_dir']``."""
        import torch

        from neurodecode.core.training import Trainer

        check_params(self)
        self._drop_fitted()
        settings = self._settings()
        tensors = self._prepare(X, y)
        torch.manual_seed(settings["seed"])
        model = self._build(tensors)
        tensors = self._dataset(tensors)
        settings["batch_size"] = min(int(settings["batch_size"]), len(tensors[0]))
        trainer = Trainer(**{**settings, "drop_last": True})
        objective: Callable[[Any, Any], Any] = lambda m, batch: self._loss(m, batch, trainer)  # noqa: E731
        trainer.fit(model, objective, torch.utils.data.TensorDataset(*tensors), config=self._checkpoint_config(),
                    resume=resume)
        self.model_, self.history_ = model.eval(), trainer.history
        return self

    def _dataset(self, tensors: tuple[Any, ...]) -> tuple[Any, ...]:
        """The dataset's tensors once the network exists (default: those of :meth:`_prepare`); for inputs that
        depend on the network, e.g. its subject layers."""
        return tensors

    def _checkpoint_config(self) -> dict[str, Any] | None:
        """What the Trainer's resumable checkpoints record about the estimator (None: nothing)."""
        return None

    @property
    def _model_device(self) -> Any:
        """The device the trained network is on."""
        import torch

        first = next(iter(self.model_.parameters()), None)
        return first.device if first is not None else torch.device("cpu")
