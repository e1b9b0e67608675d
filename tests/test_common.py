"""Common checks over every public estimator of neurodecode, found by introspection (scikit-learn's
``test_common.py``, braindecode's completeness test): a new estimator without a case here fails the suite.

Each case builds the estimator small and the data it takes (from :mod:`neurodecode.loaders.simulate`), then the
checks run on all of them: scikit-learn's API checks (parameters stored as given, defaults constructible,
``get_params``/``set_params``), ``fit`` returns the estimator and sets fitted attributes that end in ``_`` (a refit
keeps none of the old ones), its declared parameter checks refuse a bad value naming the field, and the fitted
estimator round-trips through the checkpoint-component protocol (``save_component`` / ``load_component``) with the
same outputs.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import warnings

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.utils.estimator_checks import (check_get_params_invariance, check_no_attributes_set_in_init,
                                            check_parameters_default_constructible, check_set_params)

import neurodecode
from neurodecode.loaders.simulate import simulated_epochs

TINY_TRAINER = {"max_epochs": 2, "batch_size": 8}


def public_estimators() -> dict[str, type]:
    """Every public scikit-learn estimator class defined in a neurodecode module (the command line and the bases of
    :mod:`neurodecode.core.estimators` excluded)."""
    found = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        for info in pkgutil.walk_packages(neurodecode.__path__, "neurodecode."):
            if info.name.startswith("neurodecode.cli") or info.name.endswith("__main__") or \
                    info.name == "neurodecode.core.estimators":
                continue
            module = importlib.import_module(info.name)
            for name, obj in vars(module).items():
                if (inspect.isclass(obj) and obj.__module__ == module.__name__ and not name.startswith("_")
                        and issubclass(obj, BaseEstimator)):
                    found[name] = obj
    return found


# -- data ---------------------------------------------------------------------------------------------------------

def _signals():
    ep = simulated_epochs(n_epochs=24, n_channels=4, n_times=64, sfreq=64.0, seed=0)
    return ep, ep.data.astype(np.float64), ep.table["label"].to_numpy()


def _spd():
    from neurodecode.encoders import Covariances

    ep, X, y = _signals()
    return Covariances("oas").fit_transform(X), y, ep.table["subject"].to_numpy()


def _regression(n=30, p=12, q=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    return X, X[:, :q] @ rng.normal(size=(q, q)) + 0.1 * rng.normal(size=(n, q))


def _images(n=30, size=8, seed=0):
    return np.random.default_rng(seed).uniform(size=(n, size, size, 1)).astype(np.float32)


def _mae():
    import torch

    from neurodecode import build

    torch.manual_seed(0)
    return build("encoder", "tiny_mae", ["encoder.sfreq=64.0"])


# -- one case per estimator: (builder of a small estimator, builder of (fit args), fit kwargs, output method) ------

def _tangent_vectors():
    from neurodecode.encoders import TangentSpace

    C, y, g = _spd()
    return TangentSpace().fit_transform(C), y, g


CASES = {
    # encoders: signals → features
    "Covariances": (lambda: _est("Covariances"), lambda: _signals()[1:], {}, "transform"),
    "AugmentedCovariances": (lambda: _est("AugmentedCovariances", order=2, lag=1), lambda: _signals()[1:], {},
                             "transform"),
    "ERPCovariances": (lambda: _est("ERPCovariances", nfilter=1), lambda: _signals()[1:], {}, "transform"),
    "FilterBankCovariances": (lambda: _est("FilterBankCovariances", bands=((8, 12), (12, 20)), sfreq=64.0),
                              lambda: _signals()[1:], {}, "transform"),
    "CovarianceVector": (lambda: _est("CovarianceVector"), lambda: _signals()[1:], {}, "transform"),
    "VoxelFeatures": (lambda: _est("VoxelFeatures"), lambda: (_signals()[1][..., :1],), {}, "transform"),
    "BetaVAEFeatures": (lambda: _est("BetaVAEFeatures", latent_dim=2, hidden=4, trainer=TINY_TRAINER),
                        lambda: (_signals()[1],), {}, "transform"),
    "MVCNetClassifier": (lambda: _est("MVCNetClassifier", embed_dim=4, n_filters=2, kernel=5, pool=5, stride=3,
                                      width=8, patch=8, depth=1, heads=2, proj_dim=4, trainer=TINY_TRAINER),
                         lambda: _signals()[1:], {}, "predict_proba"),
    "BrainModuleEncoder": (lambda: _est("BrainModuleEncoder", n_spatial=4, hidden=4, depth=1, out_channels=4,
                                        sfreq=64.0, trainer=TINY_TRAINER),
                           lambda: (_signals()[0], _regression(n=24, q=3)[1]), {}, "transform"),
    "BraindecodeModel": (lambda: _est("BraindecodeModel", model="ShallowFBCSPNet", trainer=TINY_TRAINER,
                                      model_kwargs={"n_filters_time": 4, "filter_time_length": 5, "n_filters_spat": 4,
                                                    "pool_time_length": 8, "pool_time_stride": 4}),
                         lambda: _signals()[::2], {}, "predict_proba"),
    "SSVEPClassifier": (lambda: _est("SSVEPClassifier", sfreq=64.0, options={"n_harmonics": 2}), lambda: _ssvep(), {},
                        "predict_proba"),
    "EncoderFeatures": (lambda: _est("EncoderFeatures", model=_mae(), channels=_signals()[0].channels, sfreq=64.0),
                        lambda: (_signals()[1],), {}, "transform"),
    "FineTunedEncoder": (lambda: _est("FineTunedEncoder", model=_mae(), channels=_signals()[0].channels,
                                      sfreq=64.0, trainer=TINY_TRAINER), lambda: _signals()[1:], {},
                         "predict_proba"),
    # Riemannian steps: matrices → matrices, vectors or classes
    "TangentSpace": (lambda: _est("TangentSpace"), lambda: (_spd()[0],), {}, "transform"),
    "MDM": (lambda: _est("MDM"), lambda: _spd()[:2], {}, "predict_proba"),
    "FgMDM": (lambda: _est("FgMDM"), lambda: _spd()[:2], {}, "predict_proba"),
    "Recenter": (lambda: _est("Recenter"), lambda: (_spd()[0], None), {"groups": "subjects"}, "transform"),
    "Stretch": (lambda: _est("Stretch"), lambda: (_spd()[0], None), {"groups": "subjects"}, "transform"),
    "Rotate": (lambda: _est("Rotate"), lambda: _spd()[:2], {"groups": "subjects"}, "transform"),
    "Procrustes": (lambda: _est("Procrustes", n_components=0), lambda: _tangent_vectors()[:2],
                   {"groups": "subjects"}, "transform"),
    "TimeWindow": (lambda: _est("TimeWindow", tmin=0.25, tmax=0.75), lambda: (_signals()[0],), {}, None),
    "SplitBands": (lambda: _est("SplitBands", n_bands=2), lambda: (_signals()[1],), {}, "transform"),
    "Connectivity": (lambda: _est("Connectivity"), lambda: (_signals()[1],), {}, "transform"),
    "GraphFeatures": (lambda: _est("GraphFeatures", density=0.5), lambda: (_connectomes(),), {}, "transform"),
    # alignment: features → latents, stimuli → brain
    "RidgeAlignment": (lambda: _est("RidgeAlignment"), _regression, {}, "predict"),
    "IdentityAlignment": (lambda: _est("IdentityAlignment"), lambda: (_regression()[1], _regression()[1]), {},
                          "predict"),
    "LearnedAlignment": (lambda: _est("LearnedAlignment", hidden=8, n_blocks=0, trainer=TINY_TRAINER), _regression,
                         {}, "predict"),
    "PriorAlignment": (lambda: _est("PriorAlignment", num_layers=1, num_attention_heads=2, attention_head_dim=4,
                                    timesteps=5, trainer=TINY_TRAINER), _regression, {}, "predict"),
    "TwoStageAlignment": (lambda: _est("TwoStageAlignment", cv=2,
                                       mapper=_est("RidgeAlignment"),
                                       prior=_est("PriorAlignment", num_layers=1, num_attention_heads=2,
                                                  attention_head_dim=4, timesteps=5, trainer=TINY_TRAINER)),
                          _regression, {}, "predict"),
    "AutoAlignment": (lambda: _est("AutoAlignment", cv=2, candidates={
                          "ridge": _est("RidgeAlignment"),
                          "mlp": _est("LearnedAlignment", hidden=8, n_blocks=0, trainer=TINY_TRAINER)}),
                      _regression, {}, "predict"),
    "RidgeEncodingModel": (lambda: _est("RidgeEncodingModel"), _regression, {}, "predict"),
    "TransformerEncodingModel": (lambda: _est("TransformerEncodingModel", n_regions=2, embed_dim=8, num_heads=2,
                                              trainer=TINY_TRAINER),
                                 lambda: (np.random.default_rng(0).normal(size=(20, 4, 3)), _regression(n=20)[1]), {},
                                 "predict"),
    "BrainGuidance": (lambda: _est("BrainGuidance", top_voxels=3, size=8),
                      lambda: (_images(), _regression()[0]), {}, None),
    # heads: the low-level image branch
    "LowLevelImages": (lambda: _est("LowLevelImages", image_shape=(8, 8, 1)), lambda: (_regression()[0], _images()),
                       {}, "predict"),
}

#: estimators whose fitted state is not a checkpoint component yet, and why
NOT_PERSISTED = {
    "FineTunedEncoder": "its head wraps a copied encoder of any architecture (SignalEncoder, LaBraM, CBraMod); "
                        "no training run saves one (they are evaluated, not decoded with)",
    "AutoAlignment": "a training run keeps the chosen aligner (best_estimator_), which is the component saved",
    "SSVEPClassifier": "MOABB's fitted classifier is not plain arrays: saving one is refused (tested in "
                       "tests/loaders/test_ssvep.py)",
}


def _ssvep():
    """Epochs at 64 Hz whose class is the frequency of the sinusoid they carry (8 or 12 Hz), labels "8" / "12"."""
    rng = np.random.default_rng(0)
    t = np.arange(64) / 64.0
    y = np.array(["8", "12"] * 12)
    X = rng.standard_normal((24, 4, 64)) + np.sin(2 * np.pi * y.astype(float)[:, None, None] * t) * 3
    return X, y


def _connectomes():
    from neurodecode.encoders import Connectivity

    return Connectivity(vectorize=False).fit_transform(_signals()[1])


def _est(name, **kw):
    return public_estimators()[name](**kw)


ESTIMATORS = public_estimators()


def test_every_public_estimator_has_a_case():
    missing = sorted(set(ESTIMATORS) - set(CASES))
    stale = sorted(set(CASES) - set(ESTIMATORS))
    assert not missing, f"public estimators without a common-checks case in tests/test_common.py: {missing}"
    assert not stale, f"cases for estimators that no longer exist: {stale}"


def test_every_public_estimator_is_registered_for_checkpoints():
    from neurodecode.core.registry import class_path, registered

    assert not [n for n, cls in ESTIMATORS.items() if not registered(class_path(cls))]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("check", [check_no_attributes_set_in_init, check_parameters_default_constructible,
                                   check_get_params_invariance, check_set_params],
                         ids=lambda c: c.__name__)
def test_scikit_learn_api_checks(name, check):
    check(name, clone(ESTIMATORS[name]()))


def _fit(name):
    build, data, fit_kw, _ = CASES[name]
    est = build()
    args = data()
    kw = {k: (_spd()[2] if v == "subjects" else v) for k, v in fit_kw.items()}
    if name == "Procrustes":
        kw["groups"] = _tangent_vectors()[2]
    return est, args, kw


def _output(est, name, args, kw=None):
    method = CASES[name][3]
    if method is None:
        return None
    fn = getattr(est, method)
    extra = {"groups": kw["groups"]} if kw and "groups" in kw and "groups" in inspect.signature(fn).parameters else {}
    return np.asarray(fn(args[0], **extra))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fit_returns_self_sets_trailing_underscore_attributes_and_refits_cleanly(name):
    est, args, kw = _fit(name)
    before = set(vars(est))
    assert est.fit(*args, **kw) is est
    fitted = set(vars(est)) - before
    assert fitted and all(a.endswith("_") or a.startswith("_") for a in fitted), sorted(fitted)
    assert set(est.get_params(deep=False)) <= before
    out = _output(est, name, args, kw)
    if out is not None:
        assert len(out) == len(args[0]) and np.isfinite(out).all()
    again = clone(est).fit(*args, **kw)
    if out is not None:                                           # a refit from the same parameters: same result
        np.testing.assert_allclose(_output(again, name, args, kw), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(set(CASES) - set(NOT_PERSISTED)))
def test_fitted_estimators_round_trip_as_checkpoint_components(name, tmp_path):
    from neurodecode.core.persistence import load_component, save_component

    est, args, kw = _fit(name)
    est.fit(*args, **kw)
    save_component(est, tmp_path / "c")
    again = load_component(tmp_path / "c")
    assert type(again) is type(est)
    out = _output(est, name, args, kw)
    if out is not None:
        np.testing.assert_allclose(_output(again, name, args, kw), out, rtol=1e-5, atol=1e-6)
    else:
        assert again.get_params().keys() == est.get_params().keys()


def test_declared_parameter_checks_name_the_class_and_the_field():
    from neurodecode.core.estimators import check_params

    declared = {n: cls for n, cls in ESTIMATORS.items() if getattr(cls, "_parameter_constraints", None)}
    assert {"Covariances", "TangentSpace", "MDM", "Recenter", "Stretch", "Rotate", "LearnedAlignment",
            "BetaVAEFeatures", "MVCNetClassifier", "BrainModuleEncoder", "FineTunedEncoder", "BraindecodeModel"} <= set(declared)
    for name, cls in declared.items():
        field = next(iter(cls._parameter_constraints))
        est = cls()
        est.set_params(**{field: object()})
        with pytest.raises(ValueError, match=rf"{name}: field '{field}': expected .*, got <object object"):
            check_params(est)
