"""Decoding over time and temporal generalisation: MNE's estimators with neurodecode's folds, equal to MNE's own
cross-validation, with intervals, chance and figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.epochs import Channels, EpochCollection, EpochSet
from neurodecode.evaluation import decode_over_time


def _simulated(subject="1", n_epochs=40, n_channels=6, n_times=12, onset=6, seed=0):
    """Two classes that differ on channel 0 from sample ``onset`` on (times -0.2 ... 0.35 s at 20 Hz)."""
    rng = np.random.default_rng(seed)
    y = np.array(["left", "right"] * (n_epochs // 2))
    data = rng.normal(size=(n_epochs, n_channels, n_times))
    data[y == "right", 0, onset:] += 2.5
    table = pd.DataFrame({"subject": subject, "session": "1", "label": y})
    return EpochSet(data.astype(np.float32), 20.0, Channels([f"E{i}" for i in range(n_channels)], "eeg"), table,
                    tmin=-0.2)


def test_decoding_over_time_equals_mnes_cross_validation_on_the_same_folds():
    from mne.decoding import GeneralizingEstimator, SlidingEstimator, cross_val_multiscore
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ep = _simulated()
    X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
    cv = StratifiedKFold(5, shuffle=True, random_state=42)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    res = decode_over_time(ep)
    theirs = cross_val_multiscore(SlidingEstimator(clf, scoring="roc_auc"), X, y, cv=cv)
    np.testing.assert_allclose(res.scores, theirs, atol=1e-12)
    assert res.metric == "roc_auc" and res.chance == 0.5 and res.scores.shape == (5, 12)
    np.testing.assert_allclose(res.times, ep.times)
    # information appears at the onset (0.1 s), not before
    assert res.diagonal()[6:].min() > 0.8 and res.diagonal()[:6].max() < 0.75
    assert res.peak()[0] > 0.05          # at or after the onset sample (0.1 s)
    gen = decode_over_time(ep, generalize=True)
    theirs = cross_val_multiscore(GeneralizingEstimator(clf, scoring="roc_auc"), X, y, cv=cv)
    np.testing.assert_allclose(gen.scores, theirs, atol=1e-12)
    np.testing.assert_allclose(gen.diagonal(), np.diagonal(theirs.mean(0)), atol=1e-12)
    # trained after the onset, the classifier generalises to every later time, not to the earlier ones
    m = gen.mean()
    assert m[8, 6:].min() > 0.8 and m[8, :5].max() < 0.75
    assert len(gen.to_frame()) == 5 * 12 * 12 and set(gen.to_frame().columns) >= {"train_time", "test_time"}


def test_leave_one_subject_out_gives_per_subject_curves_and_an_interval_over_subjects():
    sets = EpochCollection({s: _simulated(s, seed=k) for k, s in enumerate(["1", "2", "3"])})
    res = decode_over_time(sets, scheme="cross_subject", scoring="accuracy")
    assert list(res.folds["subject"]) == ["1", "2", "3"] and res.scores.shape == (3, 12)
    assert list(res.folds["n_train"]) == [80, 80, 80] and res.chance == 0.5
    per = res.subject_scores()
    assert list(per.index) == ["1", "2", "3"]
    low, high = res.interval()
    assert (low <= res.mean() + 1e-12).all() and (high >= res.mean() - 1e-12).all() and np.isfinite(low).all()
    # a three-class set: balanced accuracy, chance one third
    three = _simulated()
    three = three.replace(table=three.table.assign(label=["a", "b", "c", "d"] * 10).assign(
        label=lambda t: t["label"].replace("d", "a")))
    assert decode_over_time(three).chance == pytest.approx(1 / 3)


def test_the_figures_show_the_curve_its_interval_chance_and_the_matrix(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    sets = EpochCollection({s: _simulated(s, seed=k) for k, s in enumerate(["1", "2"])})
    res = decode_over_time(sets)
    fig = res.plot()
    ax = fig.axes[0]
    assert len(ax.lines) >= 3 and len(ax.collections) == 1          # curve, chance, event; the interval band
    assert ax.get_ylabel() == "roc_auc"
    gen = decode_over_time(sets["1"], generalize=True)
    gen.plot(path=tmp_path / "gen.png")
    assert (tmp_path / "gen.png").stat().st_size > 5_000


def test_bad_requests_are_refused_naming_the_field():
    ep = _simulated()
    with pytest.raises(ValueError, match="field 'scheme'"):
        decode_over_time(ep, scheme="cross_session")
    with pytest.raises(ValueError, match="field 'epochs': expected at least two subjects"):
        decode_over_time(ep, scheme="cross_subject")
    with pytest.raises(ValueError, match=r"field 'table\['label'\]': expected at least two classes"):
        decode_over_time(ep.replace(table=ep.table.assign(label="left")))
    with pytest.raises(ValueError, match=r"field 'table\['cond'\]'"):
        decode_over_time(ep, target="cond")
    missing = ep.table.assign(label=ep.table["label"].where(ep.table.index != 3))
    with pytest.raises(ValueError, match="1 missing"):
        decode_over_time(ep.replace(table=missing))
    other = _simulated("2", n_times=10)
    with pytest.raises(ValueError, match=r"field 'epochs\['2'\]'.*n_times 10 vs 12"):
        decode_over_time(EpochCollection({"1": ep, "2": other}), scheme="cross_subject")
    with pytest.raises(TypeError, match="field 'epochs'"):
        decode_over_time(ep.data)


@pytest.mark.realdata
def test_decoding_over_time_on_real_motor_imagery_equals_mne(shared_data):
    from mne.decoding import SlidingEstimator, cross_val_multiscore
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import neurodecode as nd
    from neurodecode.loaders.public import eegmmidb

    ep = eegmmidb(shared_data, ["S001"], tmin=-0.5, tmax=3.0)
    mne_epochs = nd.to_mne(ep).apply_hilbert(envelope=True).resample(20.0)
    res = decode_over_time(mne_epochs.copy())
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    y = mne_epochs.events[:, 2]
    theirs = cross_val_multiscore(SlidingEstimator(clf, scoring="roc_auc"), mne_epochs.get_data(), y,
                                  cv=StratifiedKFold(5, shuffle=True, random_state=42))
    np.testing.assert_allclose(res.scores, theirs, atol=1e-6)
    assert res.scores.shape == (5, len(mne_epochs.times))
