"""Retrieval and identification metrics: brute-force references, known answers, bad input."""

import numpy as np
import pytest

from neurodecode.evaluation.metrics import pixcorr, ssim
from neurodecode.core.scores import gallery_rank, retrieval_accuracy, similarity, two_way_identification


def brute_force_hit(own, others, k, tol=1e-9):
    """Top-k hit when ties are broken at random: the mean over every order of the tied items."""
    ahead = sum(o > own + tol for o in others)
    tied = sum(abs(o - own) <= tol for o in others)
    return np.mean([ahead + pos < k for pos in range(tied + 1)])   # the true item's place among the tied ones


def brute_force_retrieval(P, T, k, metric):
    S = similarity(P, T, metric)
    n = len(S)
    img = np.mean([brute_force_hit(S[i, i], [S[i, j] for j in range(n) if j != i], k) for i in range(n)])
    brain = np.mean([brute_force_hit(S[i, i], [S[j, i] for j in range(n) if j != i], k) for i in range(n)])
    return img, brain


@pytest.mark.parametrize("metric", ["cosine", "pearson"])
@pytest.mark.parametrize("k", [1, 3])
def test_retrieval_matches_brute_force(metric, k):
    rng = np.random.default_rng(3)
    T = rng.normal(size=(12, 7))
    P = T + 1.2 * rng.normal(size=(12, 7))
    out = retrieval_accuracy(P, T, k=k, pool_size=None, metric=metric)
    img, brain = brute_force_retrieval(P, T, k, metric)
    assert out[f"image_top{k}"] == pytest.approx(img) and out[f"brain_top{k}"] == pytest.approx(brain)
    # random pools: each repeat equals brute force on that pool; same seed, same numbers
    pools = retrieval_accuracy(P, T, k=k, pool_size=5, n_repeats=7, seed=11, metric=metric)
    rng2 = np.random.default_rng(11)
    ref = np.mean([brute_force_retrieval(P[idx], T[idx], k, metric)[0]
                   for idx in (rng2.choice(12, size=5, replace=False) for _ in range(7))])
    assert pools[f"image_top{k}"] == pytest.approx(ref)
    assert retrieval_accuracy(P, T, k=k, pool_size=5, n_repeats=7, seed=11, metric=metric) == pools
    ranks = gallery_rank(P, T, np.arange(12), metric=metric, block=5)
    assert (ranks < k).mean() == pytest.approx(img)      # no ties in random data: integer ranks


def test_exact_ties_from_repeated_items_count_half_on_every_machine():
    """Repeated items tie exactly up to the last rounding bit, which differs between BLAS builds and thread
    counts; every metric counts such a tie as half, whichever way the rounding falls."""
    from neurodecode.evaluation.metrics import n_way_top1
    from neurodecode.core.scores import topk_hits

    rng = np.random.default_rng(0)
    base = rng.normal(size=(3, 6))
    T = base[[0, 0, 1, 2]]                                 # item 0 shown twice: targets 0 and 1 are one image
    P = T + 1e-13 * rng.normal(size=T.shape)               # predictions off by a rounding step
    for pred in (P, T):
        # items 0 and 1 tie with each other's target: 1 - 1/2/3 each; items 2, 3 win every comparison
        assert two_way_identification(pred, T, "cosine") == pytest.approx((2 * (1 - 0.5 / 3) + 2) / 4)
        out = retrieval_accuracy(pred, T, pool_size=None)
        assert out["image_top1"] == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)
        assert out["brain_top1"] == pytest.approx(out["image_top1"])
        ranks = gallery_rank(pred, T, np.arange(4), block=3)
        np.testing.assert_allclose(ranks, [0.5, 0.5, 0.0, 0.0])
        ahead, tied = gallery_rank(pred, T, np.arange(4), return_ties=True)
        np.testing.assert_array_equal(tied, [1, 1, 0, 0])
        np.testing.assert_allclose(topk_hits(ahead, tied, 1), [0.5, 0.5, 1, 1])
        np.testing.assert_allclose(topk_hits(ahead, tied, 2), [1, 1, 1, 1])
    # n-way: the tied partner is drawn in 1 of 3 draws for items 0/1 → (2/3 + 1/3 · 1/2) on average
    assert n_way_top1(T, T, n_way=2, n_trials=3000, seed=0) == pytest.approx((2 * (1 - 0.5 / 3) + 2) / 4, abs=0.02)
    # a gallery holding one image twice: the query's true copy and the other copy tie
    gallery = np.vstack([base, base[:1]])
    assert gallery_rank(base[:1], gallery, [0])[0] == 0.5


def test_known_answers():
    T = np.eye(4)
    assert two_way_identification(T, T) == 1.0
    assert retrieval_accuracy(T, T, pool_size=None)["image_top1"] == 1.0
    swapped = T[[1, 0, 2, 3]]
    # Pearson over one-hot rows: every wrong target correlates -1/3, so items 0 and 1 lose once and tie twice
    assert two_way_identification(swapped, T) == pytest.approx((1 / 3 + 1 / 3 + 1 + 1) / 4)
    assert two_way_identification(swapped, T, "cosine") == pytest.approx((1 / 3 + 1 / 3 + 1 + 1) / 4)
    assert retrieval_accuracy(swapped, T, pool_size=None)["image_top1"] == 0.5
    img = np.random.default_rng(0).uniform(size=(2, 16, 16))
    assert pixcorr(img, img) == pytest.approx(1.0) and pixcorr(-img, img) == pytest.approx(-1.0)
    assert ssim(img, img) == pytest.approx(1.0) and ssim(img * 0.5, img) < 0.9


def test_retrieval_bad_input():
    T = np.eye(4)
    with pytest.raises(ValueError, match=r"field 'k': expected 1 <= k <= the candidate pool \(4 items\), got 5"):
        retrieval_accuracy(T, T, k=5, pool_size=None)
    with pytest.raises(ValueError, match=r"field 'pred': expected the shape of 'true' \(4, 4\) .* got \(4, 3\)"):
        two_way_identification(T[:, :3], T)
    with pytest.raises(ValueError, match=r"field 'gallery': expected embeddings of the queries' dimension 4, got 3"):
        gallery_rank(T, T[:, :3], np.arange(4))
    with pytest.raises(ValueError, match=r"field 'metric': expected 'pearson' or 'cosine', got 'l2'"):
        similarity(T, T, "l2")
