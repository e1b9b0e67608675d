"""MOABB-style evaluations and the feature-extraction API."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from scipy import stats

from neurodecode import Channels, EpochCollection, EpochSet, save
from neurodecode.evaluation import evaluate, score_predictions
from neurodecode.encoders.features import RECIPES, extract_features, make_recipe
from neurodecode.encoders.riemann import Covariances, MDM, TangentSpace

CH = [f"E{i}" for i in range(6)]


def subject_epochs(subject, seed, n_per_session=40, sessions=("1", "2"), distortion=0.8, n_times=200):
    """Sources whose first component is stronger in class 'b', seen through a subject-specific SPD mixing."""
    rng = np.random.default_rng(seed)
    S = rng.normal(size=(6, 6))
    A = expm(distortion * (S + S.T) / 2)  # each subject's sensors see the sources differently
    data, rows = [], []
    for session in sessions:
        for i in range(n_per_session):
            label = "ab"[i % 2]
            src = rng.normal(size=(6, n_times))
            src[0] *= 2.0 if label == "b" else 1.0
            data.append(A @ src)
            rows.append({"subject": subject, "session": session, "run": "1", "label": label, "trial": i})
    return EpochSet(np.array(data), 100.0, Channels(CH, "eeg"), pd.DataFrame(rows))


def ts_lr():
    return make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression(max_iter=1000))


@pytest.fixture(scope="module")
def study():
    return EpochCollection([subject_epochs(f"s{k}", seed=k) for k in range(4)])


def test_within_session_folds_and_summary(study):
    res = evaluate(study, ts_lr(), "within_session", n_splits=4, seed=1)
    sc = res.scores
    assert len(sc) == 4 * 2 * 4 * 3  # subjects × sessions × folds × metrics
    assert set(sc["metric"]) == {"accuracy", "balanced_accuracy", "roc_auc"}
    assert (sc["n_test"] == 10).all() and (sc["n_train"] == 30).all()
    summ = res.summary().set_index("metric")
    acc = sc[sc["metric"] == "accuracy"]["value"].to_numpy()
    assert summ.loc["accuracy", "mean"] == pytest.approx(acc.mean())
    half = stats.t.ppf(0.975, len(acc) - 1) * acc.std(ddof=1) / np.sqrt(len(acc))
    assert summ.loc["accuracy", "ci_high"] == pytest.approx(acc.mean() + half)
    assert summ.loc["accuracy", "mean"] > 0.8
    again = evaluate(study, ts_lr(), "within_session", n_splits=4, seed=1)
    pd.testing.assert_frame_equal(again.scores, sc)  # same seed, same folds, same numbers


def test_cross_session_leaves_each_session_out(study):
    sc = evaluate(study, make_pipeline(Covariances("oas"), MDM()), "cross_session").scores
    acc = sc[sc["metric"] == "accuracy"]
    assert len(acc) == 4 * 2 and set(acc["test"]) == {"session 1", "session 2"}
    assert (acc["n_train"] == 40).all() and acc["value"].mean() > 0.8


def test_cross_subject_recentering_helps(study, tmp_path):
    plain = evaluate(study, ts_lr(), "cross_subject")
    centred = evaluate(study, ts_lr(), "cross_subject", recenter=True)
    a = plain.summary().set_index("metric").loc["accuracy", "mean"]
    b = centred.summary().set_index("metric").loc["accuracy", "mean"]
    assert b > a + 0.15 and b > 0.8, (a, b)
    assert set(centred.scores["scheme"]) == {"cross_subject+recenter"}
    assert (centred.scores["n_test"] == 80).all()
    centred.plot(tmp_path / "scores.png")
    assert (tmp_path / "scores.png").stat().st_size > 1000
    data = json.loads(centred.to_json(tmp_path / "scores.json"))
    assert {r["metric"] for r in data["summary"]} == {"accuracy", "balanced_accuracy", "roc_auc"}


def test_recentering_finds_the_covariances_inside_a_recipe(study):
    """The README's form: make_pipeline(make_recipe(...), classifier) nests the covariance step one level down."""
    nested = make_pipeline(make_recipe("tangent_space"), LogisticRegression(max_iter=1000))
    a = evaluate(study, nested, "cross_subject", recenter=True).scores
    b = evaluate(study, ts_lr(), "cross_subject", recenter=True).scores
    np.testing.assert_allclose(a["value"], b["value"], rtol=1e-9)
    with pytest.raises(TypeError, match=r"field 'pipeline': expected a Pipeline with a covariance step .* got "
                                        r"TangentSpace → LogisticRegression"):
        evaluate(study, make_pipeline(TangentSpace(), LogisticRegression()), "cross_subject", recenter=True)


def test_confidence_intervals_of_unit_metrics_stay_in_zero_one():
    from neurodecode.evaluation.classification import EvaluationResult

    rows = [{"scheme": "within_session", "subject": "s", "session": "1", "fold": i, "test": str(i), "n_train": 8,
             "n_test": 2, "metric": m, "value": v} for i, v in enumerate([1.0, 1.0, 0.5, 1.0])
            for m in ("accuracy", "log_loss")]
    summary = EvaluationResult(pd.DataFrame(rows)).summary().set_index("metric")
    mean, sd = 0.875, np.std([1, 1, 0.5, 1], ddof=1)
    half = stats.t.ppf(0.975, 3) * sd / 2
    assert summary.loc["accuracy", "ci_high"] == 1.0 and summary.loc["accuracy", "ci_low"] == pytest.approx(mean - half)
    assert summary.loc["log_loss", "ci_high"] == pytest.approx(mean + half)       # not a [0, 1] metric: unclipped
    assert mean + half > 1.0


def test_evaluation_errors(study):
    with pytest.raises(ValueError, match=r"field 'scheme': expected one of \['within_session', 'cross_session', 'cross_subject'\], got 'loso'"):
        evaluate(study, ts_lr(), "loso")
    with pytest.raises(ValueError, match=r"field 'recenter': expected True only with scheme='cross_subject'"):
        evaluate(study, ts_lr(), "within_session", recenter=True)
    odd = EpochCollection([subject_epochs("s0", 0), subject_epochs("s1", 1).pick_channels(CH[:5])])
    with pytest.raises(ValueError, match=r"field 'epochs\['s1'\]': expected the channels and n_times of the first subject .*channel names differ"):
        evaluate(odd, ts_lr(), "cross_subject")
    one = subject_epochs("s0", 0, sessions=("1",))
    with pytest.raises(ValueError, match="a subject with at least two sessions for cross_session"):
        evaluate(one, ts_lr(), "cross_session")
    with pytest.raises(ValueError, match=r"field 'target': expected a table column"):
        evaluate(one, ts_lr(), target="category")


def test_score_predictions_multiclass_auc():
    y = np.array([0, 1, 2, 0, 1, 2])
    proba = np.eye(3)[[0, 1, 2, 0, 2, 1]] * 0.8 + 0.2 / 3
    out = score_predictions(y, proba.argmax(1), proba, np.arange(3))
    assert out["accuracy"] == pytest.approx(4 / 6) and 0.5 < out["roc_auc"] < 1


@pytest.mark.parametrize("recipe, n_features, first_name", [
    ("covariance", 21, "E0|E0"),
    ("tangent_space", 21, "E0|E0"),
    ("augmented_tangent_space", 18 * 19 // 2, "E0@0|E0@0"),
    ("filterbank_tangent_space", 2 * 21, "8-12Hz:E0|E0"),
])
def test_extract_features_names_and_table(recipe, n_features, first_name, tmp_path):
    ep = subject_epochs("s0", 0, sessions=("1",), n_per_session=10)
    params = {"order": 3, "lag": 2} if recipe.startswith("augmented") else {}
    if recipe.startswith("filterbank"):
        params["bands"] = [[8, 12], [12, 30]]
    feats = extract_features(ep, recipe, **params)
    assert feats.X.shape == (10, n_features) and len(feats.names) == n_features
    assert feats.names[0] == first_name and len(set(feats.names)) == n_features
    frame = feats.to_frame()
    assert list(frame.columns[:6]) == ["subject", "session", "run", "stimulus", "label", "onset"]
    feats.save(tmp_path / "f.parquet")
    back = pd.read_parquet(tmp_path / "f.parquet")
    np.testing.assert_array_equal(back[feats.names].to_numpy(), feats.X)
    if recipe == "covariance":     # standardised: raw V² entries would leave a classifier predicting one class
        np.testing.assert_allclose(feats.X.mean(0), 0, atol=1e-9)
        np.testing.assert_allclose(feats.X.std(0), 1, rtol=1e-6)
    if recipe == "tangent_space":  # equals the estimators it is made of
        np.testing.assert_allclose(feats.X, TangentSpace().fit_transform(Covariances("oas").fit_transform(ep.data)))
        assert feats.names[1] == "E0|E1"


def test_the_covariance_recipe_classifies_eeg_scaled_signals(study):
    from neurodecode.evaluation.classification import recipe_classifier

    volts = EpochCollection([_scaled(subject_epochs(f"s{k}", seed=k), 1e-5) for k in range(2)])   # volts, as EEG
    res = evaluate(volts, recipe_classifier("covariance"), "within_session", n_splits=4)
    acc = res.scores[res.scores["metric"] == "accuracy"]["value"]
    assert acc.mean() > 0.75                                  # unscaled V² entries: 0.5, one class predicted


def _scaled(ep, factor):
    return EpochSet(ep.data * factor, ep.sfreq, ep.channels, ep.table)


def test_extract_features_bad_input():
    with pytest.raises(ValueError, match=r"field 'recipe': expected one of \['covariance', 'tangent_space', .*\], got 'csp'"):
        extract_features(np.ones((2, 3, 50)), "csp")
    with pytest.raises(ValueError, match=r"field 'epochs': expected an EpochSet or an array of shape \(n_epochs, n_channels, n_times\), got shape \(3, 50\)"):
        extract_features(np.ones((3, 50)))
    with pytest.raises(ValueError, match=r"field 'sfreq': expected the sampling rate"):
        make_recipe("filterbank_tangent_space")
    with pytest.raises(ValueError, match=r"field 'path': expected a file name ending in .parquet or .csv"):
        extract_features(np.random.default_rng(0).normal(size=(4, 2, 50))).save("f.xlsx")
    assert set(RECIPES) == {"covariance", "tangent_space", "augmented_tangent_space", "filterbank_tangent_space",
                            "xdawn_tangent_space"}
    with pytest.raises(ValueError, match=r"field 'table\['label'\]': expected a label for every epoch"):
        extract_features(np.random.default_rng(0).normal(size=(4, 2, 50)), "xdawn_tangent_space")


@pytest.mark.realdata
def test_within_session_on_eegmmidb_equals_cross_val_score(shared_data):
    from neurodecode import concatenate
    from neurodecode.cli.example import epochs_from_run, load_config

    cfg = load_config()
    ep = concatenate([epochs_from_run(shared_data / "eegmmidb_S001" / f"S001R{r:02d}.edf", r, cfg)
                      for r in (4, 8, 12)])
    res = evaluate(ep, ts_lr(), "within_session", n_splits=5, seed=42)
    summ = res.summary().set_index("metric")
    assert summ.loc["accuracy", "mean"] == pytest.approx(0.733, abs=0.005)
    assert summ.loc["accuracy", "n_folds"] == 5
    print(f"\n{res.summary().round(3).to_string()}")


@pytest.mark.parametrize("name", ["tangent_space", "augmented_tangent_space", "filterbank_tangent_space",
                                  "covariance", "xdawn_tangent_space"])
def test_hydra_feature_configs_instantiate(name):
    from omegaconf import OmegaConf

    from neurodecode.core.configs import build, load_config

    cfg = load_config("features", name)
    overrides = ["sfreq=100.0"] if "sfreq" in cfg.keys() and OmegaConf.is_missing(cfg, "sfreq") else []
    pipe = build("features", name, overrides)
    ep = subject_epochs("s0", 0, sessions=("1",), n_per_session=8, n_times=300)
    assert pipe.fit_transform(ep.data.astype(np.float64), ep.table["label"].to_numpy()).shape[0] == 8


def test_features_command_writes_a_table(tmp_path, capsys):
    from neurodecode.cli import main

    ep = subject_epochs("s0", 0, sessions=("1",), n_per_session=12)
    save(ep, tmp_path / "s0.h5")
    assert main(["features", str(tmp_path / "s0.h5"), "--recipe", "filterbank_tangent_space",
                 "-p", "bands=[[8,12],[20,30]]", "--out", str(tmp_path / "f.csv")]) == 0
    frame = pd.read_csv(tmp_path / "f.csv")
    assert frame.shape == (12, len(ep.table.columns) + 42) and "20-30Hz:E0|E5" in frame.columns
    assert "12 epochs × 42 features" in capsys.readouterr().out
    assert main(["features", str(tmp_path / "s0.h5"), "--out", str(tmp_path / "f.csv"), "--param", "colour=red"]) == 2
    assert "expected key=value with keys among" in capsys.readouterr().err
    save(EpochCollection([ep]), tmp_path / "c.h5")
    assert main(["features", str(tmp_path / "c.h5"), "--out", str(tmp_path / "g.parquet")]) == 2
    assert "c.h5: field 'subject': expected one of ['s0'] (this file is a collection)" in capsys.readouterr().err
    assert main(["features", str(tmp_path / "c.h5"), "--subject", "s0", "--out", str(tmp_path / "g.parquet")]) == 0
    assert pd.read_parquet(tmp_path / "g.parquet").shape == (12, len(ep.table.columns) + 21)


def test_recenter_refuses_a_supervised_covariance_step():
    """Re-centring fits the covariance step on every subject's unlabeled epochs: the xDAWN step needs labels."""
    from neurodecode.evaluation.classification import recipe_classifier

    study = EpochCollection([subject_epochs(f"s{k}", seed=k, sessions=("1",), n_per_session=12) for k in range(2)])
    with pytest.raises(ValueError, match="field 'recenter'.*ERPCovariances, which is fitted with the labels"):
        evaluate(study, recipe_classifier("xdawn_tangent_space"), "cross_subject", recenter=True)
