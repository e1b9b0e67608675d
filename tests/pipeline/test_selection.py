"""aligner=auto: the aligner chosen by inner cross-validation on the training trials, folds grouped by stimulus,
ties to the simpler candidate, the choice and its reason in metrics.json, the report and the checkpoint."""

import json

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor

from neurodecode.alignment.aligners import RidgeAlignment
from neurodecode.cli import main
from neurodecode.pipeline import DecodingPipeline
from neurodecode.alignment.selection import AutoAlignment


def _linear(n_stimuli=30, repeats=2, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n_stimuli, 6))
    Y = np.repeat(Z, repeats, axis=0)
    X = Y @ rng.normal(size=(6, 40)) + 0.5 * rng.normal(size=(len(Y), 40))
    return X, Y


def test_auto_picks_the_better_aligner_and_refits_it_on_all_trials():
    X, Y = _linear()
    auto = AutoAlignment({"mean": DummyRegressor(), "ridge": RidgeAlignment()}, cv=5).fit(X, Y)
    assert auto.choice_ == "ridge" and len(auto.cv_scores_["ridge"]) == 5
    assert np.mean(auto.cv_scores_["mean"]) == pytest.approx(0.5, abs=1e-9)       # a constant prediction: all ties
    assert auto.reason_.startswith("aligner=auto chose ridge: inner 5-fold two_way") and "vs mean 0.500" in auto.reason_
    np.testing.assert_allclose(auto.predict(X), RidgeAlignment().fit(X, Y).predict(X), atol=1e-10)
    corr = AutoAlignment({"mean": DummyRegressor(), "ridge": RidgeAlignment()}, scoring="correlation").fit(X, Y)
    assert corr.choice_ == "ridge" and json.dumps(corr.selection())


def test_inner_folds_keep_each_stimulus_on_one_side_and_ties_go_to_the_first():
    X, Y = _linear(n_stimuli=12, repeats=3)
    auto = AutoAlignment({"a": RidgeAlignment(), "b": RidgeAlignment()}, cv=4)
    for train, test in auto._folds(Y):
        assert not {tuple(r) for r in Y[train].round(9)} & {tuple(r) for r in Y[test].round(9)}
    assert auto.fit(X, Y).choice_ == "a"                  # equal scores: the candidate listed first
    with pytest.raises(ValueError, match="field 'scoring': expected one of"):
        AutoAlignment(scoring="r2").fit(X, Y)
    with pytest.raises(ValueError, match="field 'cv': expected an integer ≥ 2"):
        AutoAlignment({"a": RidgeAlignment()}, cv=1).fit(X, Y)
    with pytest.raises(ValueError, match="field 'y': expected at least 4 distinct targets"):
        AutoAlignment({"a": RidgeAlignment()}).fit(X[:6], Y[:6])


def test_a_training_run_with_aligner_auto_says_what_it_chose(tmp_path):
    from neurodecode.pipeline.decoding import reconstruct

    run = tmp_path / "run"
    assert main(["train", "experiment=tiny", "aligner=auto", "aligner.candidates.mlp.trainer.max_epochs=3",
                 "aligner.candidates.mlp.hidden=32", "head@heads.images=null", "head@heads.captions=null",
                 f"hydra.run.dir={run}"]) == 0
    sel = json.loads((run / "metrics.json").read_text())["aligner_selection"]
    assert sel["choice"] in ("ridge", "mlp") and set(sel["cv_scores"]) == {"ridge", "mlp"}
    pipe = DecodingPipeline.load(run / "checkpoint")
    expected = {"ridge": "RidgeAlignment", "mlp": "LearnedAlignment"}[sel["choice"]]
    assert type(pipe.aligner).__name__ == expected and pipe.selection["reason"] == sel["reason"]
    res = reconstruct(run / "checkpoint", [run / "heldout_epochs.h5"], tmp_path / "rec", progress=False)
    assert sel["reason"] in open(res["report"], encoding="utf-8").read()
