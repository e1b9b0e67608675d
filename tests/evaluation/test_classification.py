"""MOABB-style evaluations and the feature-extraction API."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from scipy import stats

from neurodecode import Channels, EpochCollection, EpochSet, save
from neurodecode.core.epochs import concatenate
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


@pytest.mark.slow
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
    timing = ["fit_seconds", "predict_seconds"]                # same seed, same folds, same numbers
    pd.testing.assert_frame_equal(again.scores.drop(columns=timing), sc.drop(columns=timing))
    pd.testing.assert_frame_equal(again.trials, res.trials)


def test_within_subject_pools_the_sessions_into_one_set_of_folds(study):
    from sklearn.model_selection import StratifiedKFold

    from neurodecode.cli.main import EVALUATION_SCHEMES
    from neurodecode.evaluation.classification import SCHEMES

    assert EVALUATION_SCHEMES == SCHEMES                     # the CLI's choices, spelled without importing sklearn
    two = EpochCollection([study["s0"], study["s1"]])
    sc = evaluate(two, ts_lr(), "within_subject", n_splits=4, seed=1).scores
    acc = sc[sc["metric"] == "accuracy"]
    assert len(acc) == 2 * 4 and set(acc["session"]) == {"all"} and set(acc["scheme"]) == {"within_subject"}
    assert (acc["n_test"] == 20).all() and (acc["n_train"] == 60).all()           # 80 trials of both sessions
    ep = study["s0"]
    X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
    ref = [ts_lr().fit(X[tr], y[tr]).score(X[te], y[te])
           for tr, te in StratifiedKFold(4, shuffle=True, random_state=1).split(X, y)]
    np.testing.assert_allclose(acc[acc["subject"] == "s0"]["value"], ref)
    with pytest.raises(ValueError, match="field 'recenter'"):
        evaluate(two, ts_lr(), "within_subject", recenter=True)


def test_a_selection_on_inner_subjects_inside_a_cross_subject_evaluation(study):
    """GridSearchCV over the epoch window and re-centring, with LeaveOneSubjectOut reading the subjects from the
    EpochSet: evaluate hands it the EpochSet (TimeWindow reads epochs), each outer fold chooses on the training
    subjects only, and Recenter inside the pipeline re-centres each subject on its own epochs."""
    from sklearn.model_selection import GridSearchCV

    from neurodecode.encoders import Recenter
    from neurodecode.encoders.features import reads_epochs
    from neurodecode.encoders.inputs import TimeWindow
    from neurodecode.evaluation.classification import LeaveOneSubjectOut

    pipe = Pipeline([("window", TimeWindow()), ("cov", Covariances("oas")), ("recenter", Recenter()),
                     ("ts", TangentSpace()), ("lr", LogisticRegression(max_iter=1000))])
    search = GridSearchCV(pipe, {"window__tmax": [0.99, 1.99], "recenter": [Recenter(), "passthrough"]},
                          cv=LeaveOneSubjectOut())
    assert reads_epochs(search) and reads_epochs(pipe) and not reads_epochs(ts_lr())
    three = EpochCollection([study["s0"], study["s1"], study["s2"]])
    res = evaluate(three, search, "cross_subject")
    acc = res.scores[res.scores["metric"] == "accuracy"]
    assert len(acc) == 3 and acc["value"].mean() > 0.8          # the planted subjects need re-centring
    # the same as choosing by hand on the two training subjects
    train = concatenate([study["s0"], study["s1"]])
    chosen = GridSearchCV(pipe, search.param_grid, cv=LeaveOneSubjectOut()).fit(
        train, train.table["label"].to_numpy())
    assert isinstance(chosen.best_params_["recenter"], Recenter)
    want = chosen.score(study["s2"], study["s2"].table["label"].to_numpy())
    assert acc.loc[acc["subject"] == "s2", "value"].item() == pytest.approx(want)
    assert list(LeaveOneSubjectOut().split(train))[0][1].tolist() == list(range(80))
    with pytest.raises(TypeError, match="field 'X': expected epochs whose table has a 'subject' column"):
        list(LeaveOneSubjectOut().split(train.data))
    window = TimeWindow(0.5, 1.0).fit(train)
    assert window.transform(train).times[[0, -1]].tolist() == [0.5, 1.0]
    with pytest.raises(ValueError, match=r"field 'tmin'/'tmax': expected a window inside the epochs \(0 to 1.99 s\), "
                                         r"got 0.5 to 3 s"):
        TimeWindow(0.5, 3.0).fit(train)
    with pytest.raises(TypeError, match="field 'X': expected an EpochSet or an mne.Epochs"):
        TimeWindow(0.5, 1.0).fit(train.data)


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
    with pytest.raises(ValueError, match=r"field 'scheme': expected one of \['within_session', 'within_subject', 'cross_session', 'cross_subject'\], got 'loso'"):
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
                            "xdawn_tangent_space", "connectivity", "graph_connectivity"}
    with pytest.raises(ValueError, match=r"field 'table\['label'\]': expected a label for every epoch"):
        extract_features(np.random.default_rng(0).normal(size=(4, 2, 50)), "xdawn_tangent_space")


@pytest.mark.slow
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
                                  "covariance", "xdawn_tangent_space", "connectivity", "tangent_connectivity",
                                  "graph_connectivity"])
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
                 "bands=[[8,12],[20,30]]", "--out", str(tmp_path / "f.csv")]) == 0
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


def test_supervised_covariances_are_fitted_on_the_training_subjects_only():
    """Re-centring with an xDAWN step: per fold, xDAWN is fitted on the training subjects' labelled epochs only and
    every subject is re-centred on its own epochs (the fold's numbers, recomputed by hand)."""
    from neurodecode.encoders.riemann import ERPCovariances, Recenter
    from neurodecode.evaluation.classification import recipe_classifier

    study = EpochCollection([subject_epochs(f"s{k}", seed=k, sessions=("1",), n_per_session=30) for k in range(3)])
    res = evaluate(study, recipe_classifier("xdawn_tangent_space"), "cross_subject", recenter=True).scores
    all_ep = concatenate(list(study.values()))
    X, y, subj = all_ep.data, all_ep.table["label"].to_numpy(), all_ep.table["subject"].to_numpy()
    for s in ("s0", "s2"):
        tr = subj != s
        C = Recenter().fit_transform(ERPCovariances().fit(X[tr], y[tr]).transform(X), groups=subj)
        clf = make_pipeline(TangentSpace(), LogisticRegression(max_iter=1000)).fit(C[tr], y[tr])
        acc = res[(res["subject"] == s) & (res["metric"] == "accuracy")]["value"].item()
        assert acc == pytest.approx(np.mean(clf.predict(C[~tr]) == y[~tr]), abs=1e-12)


def rpa_reference(X, y, subj, target, cal, procrustes=False):
    """pyRiemann's transfer pipeline for one fold: sources + the target's calibration trials train it."""
    from pyriemann.tangentspace import TangentSpace as PyTS
    from pyriemann.transfer import TLCenter, TLRotate, TLScale, encode_domains

    C = Covariances("oas").fit_transform(X)
    _, y_enc = encode_domains(C, y, subj)
    train, test = (subj != target) | cal, (subj == target) & ~cal
    steps = [TLCenter(target), PyTS(), TLRotate(target)] if procrustes else \
        [TLCenter(target), TLScale(target, centered_data=True), TLRotate(target), PyTS()]
    pipe = make_pipeline(*steps)
    Z_tr, Z_te = pipe.fit_transform(C[train], y_enc[train]), pipe.transform(C[test])
    clf = LogisticRegression(max_iter=1000).fit(Z_tr, y[train])
    return score_predictions(y[test], clf.predict(Z_te), clf.predict_proba(Z_te), clf.classes_)


@pytest.mark.slow
@pytest.mark.parametrize("transfer", ["rpa", "procrustes"])
def test_rpa_and_procrustes_equal_pyriemann_transfer(study, transfer):
    from neurodecode.evaluation.classification import calibration_trials

    res = evaluate(study, ts_lr(), "cross_subject", transfer=transfer, n_calibration=6, seed=3).scores
    assert set(res["scheme"]) == {f"cross_subject+{transfer}"}
    assert (res["n_test"] == 80 - 12).all() and (res["n_train"] == 3 * 80 + 12).all()
    all_ep = concatenate(list(study.values()))
    X, y, subj = all_ep.data, all_ep.table["label"].to_numpy(), all_ep.table["subject"].to_numpy()
    for s in ("s1", "s3"):
        cal = calibration_trials(y, subj == s, 6, seed=3)
        assert cal.sum() == 12 and set(y[cal]) == {"a", "b"}
        want = rpa_reference(X, y, subj, s, cal, procrustes=transfer == "procrustes")
        got = res[res["subject"] == s].set_index("metric")["value"]
        for metric in ("accuracy", "roc_auc"):
            assert got[metric] == pytest.approx(want[metric], abs=1e-9), (s, metric)
    plain = evaluate(study, ts_lr(), "cross_subject").summary().set_index("metric").loc["accuracy", "mean"]
    assert res[res["metric"] == "accuracy"]["value"].mean() > plain + 0.15


@pytest.mark.slow
def test_cross_session_transfer_and_errors(study):
    res = evaluate(study, ts_lr(), "cross_session", transfer="rpa", n_calibration=4).scores
    assert set(res["scheme"]) == {"cross_session+rpa"} and (res["n_test"] == 32).all()
    assert res[res["metric"] == "accuracy"]["value"].mean() > 0.8
    with pytest.raises(ValueError, match=r"field 'n_calibration': expected at least 1 labelled calibration trial "
                                         r"per class of the test unit for transfer='rpa'"):
        evaluate(study, ts_lr(), "cross_subject", transfer="rpa")
    with pytest.raises(ValueError, match=r"field 'transfer': expected a value only with scheme='cross_subject' or "
                                         r"'cross_session', got scheme='within_session'"):
        evaluate(study, ts_lr(), transfer="recenter")
    with pytest.raises(ValueError, match=r"field 'transfer': expected None or one of \['recenter', 'rpa', "
                                         r"'procrustes'\], got 'ea'"):
        evaluate(study, ts_lr(), "cross_subject", transfer="ea")
    with pytest.raises(ValueError, match=r"field 'n_calibration': expected fewer trials per class than subject s0 "
                                         r"has \(class 'a': 40\)"):
        evaluate(study, ts_lr(), "cross_subject", n_calibration=40)
    with pytest.raises(TypeError, match=r"field 'pipeline': expected a TangentSpace step right after the covariance "
                                        r"step, then a classifier, for transfer='procrustes', got MDM"):
        evaluate(study, make_pipeline(Covariances("oas"), MDM()), "cross_subject", transfer="procrustes",
                 n_calibration=3)
    with pytest.raises(ValueError, match=r"field 'recenter': expected False with transfer='rpa'"):
        evaluate(study, ts_lr(), "cross_subject", recenter=True, transfer="rpa", n_calibration=3)


@pytest.mark.slow
@pytest.mark.realdata
def test_transfer_between_imagined_and_executed_eegmmidb_and_across_muse_subjects(shared_data):
    """Real EEG: EEGMMIDB subject 1's imagined and executed fists as two stand-in subjects (README table: re-centring
    with 10 calibration trials per class 0.880 on the imagined runs, no alignment 0.689); and leave one Muse N170
    subject out with the xDAWN recipe fitted on the training subject, with and without re-centring (at chance)."""
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.public import eegmmidb, muse

    def named(ep, subject):
        return ep.replace(table=ep.table.assign(subject=subject))

    mi = EpochCollection([named(eegmmidb(shared_data, ["S001"], (4, 8, 12)), "imagined"),
                          named(eegmmidb(shared_data, ["S001"], (3, 7, 11)), "executed")])

    def accuracy(collection, recipe="tangent_space", **kw):
        sc = evaluate(collection, recipe_classifier(recipe), "cross_subject", **kw).scores
        return sc[sc["metric"] == "accuracy"].set_index("subject")["value"]

    plain, calibrated = accuracy(mi), accuracy(mi, transfer="recenter", n_calibration=10)
    print(f"\nimagined ← executed: none {plain['imagined']:.3f}, recenter+10 {calibrated['imagined']:.3f}")
    assert calibrated["imagined"] >= 0.8 and calibrated["imagined"] > plain["imagined"] + 0.1
    steps = [{"step": "montage", "name": "standard_1005"}, {"step": "notch", "freqs": [50.0]},
             {"step": "filter", "l_freq": 1.0, "h_freq": 30.0}]
    n170 = EpochCollection([muse(shared_data, "N170", s, steps=steps) for s in ("1", "2")])
    for kw in ({}, {"transfer": "recenter"}):
        acc = accuracy(n170, "xdawn_tangent_space", **kw)
        print(f"Muse N170 leave one subject out, xdawn_tangent_space {kw or 'none'}: "
              f"{acc['N170-1']:.3f} / {acc['N170-2']:.3f}")
        assert 0.4 < acc.mean() < 0.6  # the README reports chance: a jump would mean a leak between subjects


@pytest.mark.slow
def test_the_plain_baseline_runs_on_the_same_folds_and_is_compared_per_fold(study, tmp_path, capsys):
    from neurodecode.cli import main
    from neurodecode.evaluation.classification import compare_evaluations, evaluation_verdict

    mdm = make_pipeline(Covariances("oas"), MDM())
    res = evaluate(study, mdm, "within_session", n_splits=4, seed=1, baseline=ts_lr(), baseline_name="ts")
    alone = evaluate(study, ts_lr(), "within_session", n_splits=4, seed=1)
    timing = ["fit_seconds", "predict_seconds"]
    assert (res.scores[timing] > 0).all().all()
    pd.testing.assert_frame_equal(res.baseline.scores.drop(columns=timing), alone.scores.drop(columns=timing))
    pd.testing.assert_frame_equal(res.baseline.trials, alone.trials)           # the same folds as on its own
    cmp = res.comparison.set_index("metric")
    for metric in ("accuracy", "balanced_accuracy", "roc_auc"):
        acc = res.scores[res.scores["metric"] == metric]["value"].to_numpy()
        ref = alone.scores[alone.scores["metric"] == metric]["value"].to_numpy()
        # trial-level (accuracies) or fold-level (ROC-AUC): the difference is that of the fold means
        assert cmp.loc[metric, "difference"] == pytest.approx((acc - ref).mean(), abs=1e-12)
    n_trials = len(alone.trials)
    assert n_trials == sum(len(study[s]) for s in study.keys()) and alone.trials["fold"].nunique() == 4
    assert cmp.loc["accuracy", "n_items"] == n_trials and cmp.loc["accuracy", "unit"] == "trials"
    assert cmp.loc["roc_auc", "n_items"] == 32 and cmp.loc["roc_auc", "unit"] == "folds"
    assert cmp.loc["accuracy", "baseline_name"] == "ts"
    same = compare_evaluations(alone, alone)
    assert (same["difference"] == 0).all() and (same["p_value"] == 1).all()
    assert not evaluation_verdict(same)[0]
    saved = json.loads(res.to_json())
    assert len(saved["baseline"]["comparison"]) == 3 and len(saved["trials"]) == n_trials
    save(study["s0"], tmp_path / "s0.h5")
    assert main(["evaluate", str(tmp_path / "s0.h5"), "--recipe", "covariance", "--n-splits", "4"]) == 0
    out = capsys.readouterr()
    assert "vs baseline: roc_auc" in out.out and "baseline: tangent_space + LR" in out.out + out.err
    assert main(["evaluate", str(tmp_path / "s0.h5"), "--n-splits", "4"]) == 0
    assert "the recipe is the plain baseline" in capsys.readouterr().out


def test_the_paradigm_sets_the_default_recipe_class_weights_and_headline_metric(tmp_path, capsys):
    """ERP-like epochs (from -0.1 s, 0.9 s long) with 1 target in 6 → xDAWN + tangent space with balanced class
    weights, said in one line; labels naming frequencies → SSVEP; a declared paradigm column wins; a bad one is
    refused naming the field."""
    from neurodecode.cli.main import main
    from neurodecode.evaluation.classification import paradigm_defaults

    rng = np.random.default_rng(0)
    y = np.array(["target" if i % 6 == 0 else "nontarget" for i in range(72)])
    X = rng.normal(size=(72, 4, 92))
    X[y == "target", :, 40:60] += 1.5                      # an evoked bump 0.3-0.5 s after the event
    table = pd.DataFrame({"subject": "1", "session": "1", "run": "1", "label": y})
    erp = EpochSet(X * 1e-6, 100.0, Channels(["Fz", "Cz", "Pz", "Oz"], "eeg"), table, tmin=-0.1)
    d = paradigm_defaults(erp)
    assert (d.paradigm, d.recipe, d.class_weight, d.metric) == ("erp", "xdawn_tangent_space", "balanced",
                                                                "balanced_accuracy")
    assert d.reason == "epochs from -0.1 s around the event, 0.92 s long (event-related)"
    ssvep = erp.replace(table=table.assign(label=np.where(np.arange(72) % 2, "13", "17")), tmin=0.0)
    d = paradigm_defaults(ssvep)
    assert (d.paradigm, d.reason) == ("ssvep", "labels naming stimulation frequencies [13.0, 17.0] Hz")
    declared = erp.replace(table=table.assign(paradigm="motor_imagery"))
    d = paradigm_defaults(declared)
    assert (d.paradigm, d.reason, d.recipe) == ("oscillatory", "declared in table['paradigm']", "tangent_space")
    with pytest.raises(ValueError, match=r"field 'table\['paradigm'\]': expected one of \['erp', 'oscillatory', "
                                         r"'ssvep'\] \(or motor_imagery\) for every epoch, got \['p300'\]"):
        paradigm_defaults(erp.replace(table=table.assign(paradigm="p300")))
    save(erp, tmp_path / "erp.h5")
    assert main(["evaluate", str(tmp_path / "erp.h5")]) == 0
    out = capsys.readouterr().out
    assert ("paradigm: erp (epochs from -0.1 s around the event, 0.92 s long (event-related)) → recipe "
            "xdawn_tangent_space; classes imbalanced: class weights balanced, read balanced_accuracy and roc_auc, not "
            "accuracy") in out
    assert "xdawn_tangent_space + LR:" in out and "the recipe is the plain baseline" in out
    summary = out.split("xdawn_tangent_space + LR:")[1]
    bal = float(summary.split("balanced_accuracy")[1].split()[0])
    assert bal > 0.8                                    # weighted: the minority class is predicted, not ignored


def test_the_paired_test_is_trial_level_and_can_reach_small_p_values():
    """5 folds of 40 imbalanced trials (1 target in 4): the pipeline right on 36 of 40 and the baseline on 24 of 40
    in every fold. Over folds a sign-flip p-value cannot go below 1/16; over the 200 paired trials it does, and the
    trial-level differences equal those of the fold means (balanced accuracy included)."""
    from sklearn.metrics import balanced_accuracy_score

    from neurodecode.evaluation.classification import (EvaluationResult, TRIAL_COLUMNS, compare_evaluations,
                                                       evaluation_verdict)

    rng = np.random.default_rng(0)

    def result(n_right: int) -> EvaluationResult:
        rows, trials = [], []
        for fold in range(5):
            y = np.array(["t"] * 10 + ["n"] * 30)
            pred = y.copy()
            wrong = rng.choice(40, 40 - n_right, replace=False)
            pred[wrong] = np.where(y[wrong] == "t", "n", "t")
            base = {"scheme": "within_session", "subject": "1", "session": "1", "fold": fold, "test": f"fold {fold}"}
            for metric, value in (("accuracy", np.mean(pred == y)),
                                  ("balanced_accuracy", balanced_accuracy_score(y, pred)),
                                  ("roc_auc", 0.5 + n_right / 100 + rng.normal(0, 0.01))):
                rows.append({**base, "metric": metric, "value": float(value)})
            trials += [{**{k: base[k] for k in ("scheme", "subject", "session", "fold")}, "trial": 40 * fold + i,
                        "label": y[i], "prediction": pred[i]} for i in range(40)]
        return EvaluationResult(pd.DataFrame(rows), trials=pd.DataFrame(trials, columns=TRIAL_COLUMNS))

    good, plain = result(36), result(24)
    cmp = compare_evaluations(good, plain).set_index("metric")
    for metric in ("accuracy", "balanced_accuracy"):
        mean = lambda r: r.scores[r.scores["metric"] == metric]["value"].mean()  # noqa: E731
        assert cmp.loc[metric, "difference"] == pytest.approx(mean(good) - mean(plain), abs=1e-12)
        assert cmp.loc[metric, "unit"] == "trials" and cmp.loc[metric, "n_items"] == 200
        assert cmp.loc[metric, "p_value"] < 0.001 and cmp.loc[metric, "ci_low"] > 0
    assert cmp.loc["roc_auc", "unit"] == "folds" and cmp.loc["roc_auc", "p_value"] >= 1 / 16
    beats, line = evaluation_verdict(compare_evaluations(good, plain))
    assert beats and "balanced_accuracy" in line and "n = 200" in line
    # without trials (a result from an older JSON), accuracies are compared over folds
    folds_only = compare_evaluations(EvaluationResult(good.scores), plain).set_index("metric")
    assert (folds_only["unit"] == "folds").all() and folds_only.loc["accuracy", "n_items"] == 5


def test_comparing_evaluations_of_other_trials_is_refused(study):
    from neurodecode.evaluation.classification import compare_evaluations

    full = evaluate(study, ts_lr(), "within_session", n_splits=4, seed=1)
    fewer = evaluate(EpochCollection([study["s0"][np.r_[1:40, 41:80]], *[study[s] for s in ("s1", "s2", "s3")]]), ts_lr(),
                     "within_session", n_splits=4, seed=1)
    with pytest.raises(ValueError, match="field 'baseline'.*same test trials"):
        compare_evaluations(full, fewer)


@pytest.mark.realdata
def test_a_recenter_step_inside_the_pipeline_recentres_each_subject_in_evaluate(shared_data):
    """evaluate hands neurodecode's own pipelines the EpochSet, so a ``Recenter`` step re-centres each subject (it
    once got bare arrays and silently re-centred all subjects together: the plain pipeline's scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from neurodecode.encoders import Covariances, Recenter, TangentSpace
    from neurodecode.loaders.public import eegmmidb

    ep = eegmmidb(shared_data, ["S001", "S002", "S003"]).pick_channels(["FC3", "FC4", "C3", "Cz", "C4", "CP3", "CP4"])
    plain = make_pipeline(Covariances("oas"), TangentSpace(), LogisticRegression(max_iter=1000))
    step = make_pipeline(Covariances("oas"), Recenter(), TangentSpace(), LogisticRegression(max_iter=1000))
    inside = evaluate(ep, step, "cross_subject").scores
    option = evaluate(ep, plain, "cross_subject", recenter=True).scores
    without = evaluate(ep, plain, "cross_subject").scores
    np.testing.assert_allclose(inside["value"], option["value"])
    assert not np.allclose(inside["value"], without["value"])
