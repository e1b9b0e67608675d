"""A pipeline beside its plain baseline: per-trial scores whose means are the set's scores, paired differences
against SciPy's bootstrap and permutation test, the verdict line."""

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.scores import compare_scores, mean_interval, paired_difference, trial_scores, verdict
from neurodecode.evaluation.metrics import image_trial_scores, pixcorr, ssim
from neurodecode.core.scores import retrieval_accuracy, two_way_identification


def test_per_trial_scores_average_to_the_set_scores():
    rng = np.random.default_rng(0)
    true = rng.normal(size=(30, 8))
    pred = true + rng.normal(scale=1.5, size=true.shape)
    pred[3] = pred[4]                                   # a tie among candidates follows the retrieval module's rule
    imgs = rng.uniform(size=(2, 30, 12, 12))
    per = trial_scores(pred, true, images=(imgs[0], imgs[1]))
    assert per.shape == (30, 3)
    assert per["two_way"].mean() == pytest.approx(two_way_identification(pred, true, "cosine"), abs=1e-12)
    top1 = retrieval_accuracy(pred, true, k=1, pool_size=None)["image_top1"]
    assert per["top1"].mean() == pytest.approx(top1, abs=1e-12)
    assert per["pixcorr"].mean() == pytest.approx(pixcorr(imgs[0], imgs[1]), abs=1e-12)
    img = image_trial_scores(imgs[0], imgs[1])
    assert img["ssim"].mean() == pytest.approx(ssim(imgs[0], imgs[1]), abs=1e-12)
    with pytest.raises(ValueError, match="field 'pred': expected at least 2 trials"):
        trial_scores(pred[:1], true[:1])


def test_paired_difference_matches_scipys_bootstrap_and_sign_flip_test():
    from scipy import stats

    rng = np.random.default_rng(1)
    b = rng.uniform(0.4, 0.9, size=40)
    a = b + rng.normal(0.03, 0.08, size=40)
    res = paired_difference(a, b, n_resamples=4000, n_permutations=20000, seed=0)
    assert res["difference"] == pytest.approx(np.mean(a - b), abs=1e-12) and res["n_items"] == 40
    ref = stats.permutation_test((a, b), lambda x, y: np.mean(x - y), permutation_type="samples",
                                 n_resamples=20000, random_state=0)
    assert res["p_value"] == pytest.approx(ref.pvalue, abs=0.02)
    boot = stats.bootstrap((a - b,), np.mean, method="percentile", n_resamples=4000, random_state=0)
    assert res["ci_low"] == pytest.approx(boot.confidence_interval.low, abs=0.005)
    assert res["ci_high"] == pytest.approx(boot.confidence_interval.high, abs=0.005)
    same = paired_difference(b, b)
    assert same["difference"] == 0 and same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0
    shifted = paired_difference(b + 0.1, b, n_permutations=999)
    assert shifted["p_value"] == pytest.approx(1 / 1000) and shifted["ci_low"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="field 'a': expected one score per item"):
        paired_difference(a[:5], b)
    lo, hi = mean_interval(b)
    assert lo < b.mean() < hi


def test_compare_scores_and_verdict_say_which_wins():
    rng = np.random.default_rng(2)
    base = pd.DataFrame({"two_way": rng.uniform(0.5, 0.8, 25), "pixcorr": rng.uniform(0.3, 0.5, 25)})
    better = base + 0.1
    table = compare_scores(better, base, names=("mlp", "ridge"))
    assert list(table["metric"]) == ["two_way", "pixcorr"] and list(table["kind"]) == ["retrieval", "images"]
    beats, line = verdict(table)
    assert beats and line.startswith("mlp two_way") and "+0.100" in line
    beats, line = verdict(compare_scores(base, better, names=("mlp", "ridge")))
    assert not beats and line.startswith("the configured pipeline does not beat its plain baseline: mlp")
    with pytest.raises(ValueError, match="field 'baseline': expected the same trials"):
        compare_scores(base, base[:3])
    with pytest.raises(ValueError, match="field 'metric'"):
        verdict(table, "ssim")
