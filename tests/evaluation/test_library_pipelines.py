"""The pipelines of ``conf/pipeline`` that wrap a library's classifier (MOABB's FBCSP, pyRiemann's FgMDM, SVC and
MeanField) equal that library called directly on the same data, and :class:`SplitBands` hands them MOABB's layout."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.epochs import Channels, EpochSet
from neurodecode.encoders import SplitBands

BANDS = [[8, 12], [12, 16], [16, 20], [20, 24], [24, 28], [28, 32]]


def _bank(n_epochs=6, names=("C3", "Cz", "C4"), bands=("8-12Hz", "12-16Hz"), n_times=5):
    rng = np.random.default_rng(0)
    chans = [f"{c}@{b}" for b in bands for c in names]            # band-major, as the filter_bank step writes
    data = rng.normal(size=(n_epochs, len(chans), n_times)).astype(np.float32)
    table = pd.DataFrame({"subject": "1", "session": "1", "label": ["a", "b"] * (n_epochs // 2)})
    return EpochSet(data, 100.0, Channels(chans, "eeg"), table)


def test_split_bands_reads_the_bands_from_the_channel_names():
    ep = _bank()
    out = SplitBands().fit_transform(ep)
    assert out.shape == (6, 3, 5, 2)
    # channel c of band b is the stacked channel b * 3 + c
    np.testing.assert_array_equal(out[:, 2, :, 1], ep.data[:, 5])
    np.testing.assert_array_equal(out[:, 0, :, 0], ep.data[:, 0])
    sb = SplitBands().fit(ep)
    assert sb.bands_ == ["8-12Hz", "12-16Hz"] and sb.n_channels_ == 3
    # a plain array needs n_bands; MOABB's 4-D filter-bank arrays pass unchanged
    np.testing.assert_array_equal(SplitBands(n_bands=2).fit_transform(ep.data), out)
    np.testing.assert_array_equal(SplitBands().fit_transform(out), out)


def test_split_bands_refuses_layouts_it_would_have_to_guess():
    ep = _bank()
    with pytest.raises(ValueError, match="field 'n_bands': a plain array"):
        SplitBands().fit(ep.data)
    with pytest.raises(ValueError, match="field 'n_bands': 6 channels do not split into 4 bands"):
        SplitBands(n_bands=4).fit(ep.data)
    with pytest.raises(ValueError, match="field 'n_bands': 3, but the channel names give 2 bands"):
        SplitBands(n_bands=3).fit(ep)
    with pytest.raises(ValueError, match="field 'n_bands': expected an integer"):
        SplitBands(n_bands=0).fit(ep)
    # a channel outside the bank (a stimulus channel left in), and bands holding different channels
    plain = EpochSet(ep.data, 100.0, Channels(["C3@8-12Hz", "C4@8-12Hz", "C3@12-16Hz", "C4@12-16Hz", "STI", "x"],
                                              "eeg"), ep.table)
    with pytest.raises(ValueError, match=r"field 'channels': .*\['STI', 'x'\]"):
        SplitBands().fit(plain)
    mixed = EpochSet(ep.data, 100.0, Channels(["C3@8-12Hz", "Cz@8-12Hz", "C4@8-12Hz", "C4@12-16Hz", "Cz@12-16Hz",
                                               "C3@12-16Hz"], "eeg"), ep.table)
    with pytest.raises(ValueError, match="same channels in the same order"):
        SplitBands().fit(mixed)
    interleaved = EpochSet(ep.data, 100.0, Channels(["C3@8-12Hz", "C3@12-16Hz", "Cz@8-12Hz", "Cz@12-16Hz",
                                                     "C4@8-12Hz", "C4@12-16Hz"], "eeg"), ep.table)
    with pytest.raises(ValueError, match="stacked band-major"):
        SplitBands().fit(interleaved)
    with pytest.raises(ValueError, match="expected 2 bands of 3 channels as in fit, got 3 bands of 2"):
        SplitBands().fit(ep).transform(ep.data.reshape(6, 2, 5, 3))


def _config_pipeline(name):
    from neurodecode.core.configs import compose
    from neurodecode.evaluation.benchmarks import _cell_config, build_pipeline

    cfg = compose([], config_name="benchmark")
    if name not in cfg.pipelines:          # an option the default run leaves out
        cfg = compose([f"+pipeline@pipelines.{name}={name}"], config_name="benchmark")
    _, pipe = _cell_config(cfg, "eegmmidb", name)    # ${dataset.covariance} resolved as the benchmark does: oas
    return build_pipeline(pipe, name)


def _folds(y, seed=42):
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


def _predictions(result):
    return result.trials.sort_values("trial")["prediction"].astype(str).to_numpy()


@pytest.mark.slow
@pytest.mark.realdata
def test_fbcsp_equals_moabbs_pipeline_on_moabbs_own_filter_bank_epochs(tmp_path, shared_data):
    """The benchmark's filter-bank epochs are MOABB's ``FilterBankLeftRightImagery`` epochs of the same files (MOABB
    hands microvolts), and the FBCSP config predicts what MOABB's FBCSP pipeline predicts on MOABB's arrays."""
    import mne
    from moabb.paradigms import FilterBankLeftRightImagery
    from moabb.pipelines.utils import FilterBank
    from pyriemann.estimation import Covariances
    from pyriemann.spatialfilters import CSP
    from sklearn.feature_selection import SelectKBest, mutual_info_classif
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import SVC
    import functools

    from neurodecode import evaluate
    from neurodecode.core.configs import compose, instantiate
    from neurodecode.loaders.moabb import offline_physionet_mi

    mne.set_log_level("error")
    cfg = compose(["datasets.eegmmidb.epochs.default.subjects=[S001]"], config_name="benchmark")
    ours = instantiate(cfg.datasets.eegmmidb.epochs.bands, "bands", root=str(shared_data))
    assert ours.n_channels == 6 * 64
    dataset = offline_physionet_mi(shared_data, tmp_path, [1])
    X, y, _ = FilterBankLeftRightImagery(filters=BANDS, tmin=1.0, tmax=2.0).get_data(dataset, [1])
    mine = SplitBands().fit_transform(ours)
    assert X.shape == mine.shape == (45, 64, 161, 6)
    assert np.abs(X * 1e-6 - mine).max() <= 1e-6 * np.abs(mine).max()
    assert [label.split("_")[0] for label in y] == ours.table["label"].tolist()

    result = evaluate(ours, _config_pipeline("fbcsp"), "within_session", seed=42)
    moabb_fbcsp = make_pipeline(
        FilterBank(make_pipeline(Covariances(estimator="oas"), CSP(nfilter=4))),
        SelectKBest(score_func=functools.partial(mutual_info_classif, random_state=42), k=10),
        GridSearchCV(SVC(kernel="linear"), {"C": np.logspace(-2, 2, 10)}))
    theirs = np.empty(len(y), dtype=object)
    for tr, te in _folds(ours.table["label"].to_numpy()):
        theirs[te] = moabb_fbcsp.fit(X[tr], y[tr]).predict(X[te])
    np.testing.assert_array_equal(_predictions(result), [label.split("_")[0] for label in theirs])


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("name, cls", [("fgmdm", "FgMDM"), ("ts_svm", "SVC"), ("mean_field", "MeanField")])
def test_pyriemann_classifier_configs_equal_pyriemann_called_directly(name, cls, shared_data):
    import pyriemann.classification
    from pyriemann.estimation import Covariances

    from neurodecode import evaluate
    from neurodecode.loaders.public import eegmmidb

    # the 21 central channels (10-10 FC/C/CP rows; pyRiemann's FgMDM on all 64 takes about ten times longer)
    ep = eegmmidb(shared_data, ["S002"], steps=[{"step": "rename", "preset": "eegbci"}])
    ep = ep.pick_channels([c for c in ep.channels.names if c.rstrip("z0123456789") in ("FC", "C", "CP")])
    assert ep.n_channels == 21
    result = evaluate(ep, _config_pipeline(name), "within_session", seed=42)
    y = ep.table["label"].astype(str).to_numpy()
    C = Covariances(estimator="oas").fit_transform(ep.data.astype(np.float64))
    theirs = np.empty(len(y), dtype=object)
    for tr, te in _folds(y):
        theirs[te] = getattr(pyriemann.classification, cls)().fit(C[tr], y[tr]).predict(C[te])
    np.testing.assert_array_equal(_predictions(result), theirs.astype(str))
