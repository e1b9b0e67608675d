"""Retrieval and identification metrics: brute-force references, known answers, bad input."""

import numpy as np
import pytest

from neurodecode.evaluation.metrics import pixcorr, ssim
from neurodecode.evaluation.retrieval import gallery_rank, retrieval_accuracy, similarity, two_way_identification


def brute_force_retrieval(P, T, k, metric):
    S = similarity(P, T, metric)
    img = np.mean([sum(S[i, j] > S[i, i] for j in range(len(S))) < k for i in range(len(S))])
    brain = np.mean([sum(S[j, i] > S[i, i] for j in range(len(S))) < k for i in range(len(S))])
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
    assert (ranks < k).mean() == pytest.approx(img)


def test_known_answers():
    T = np.eye(4)
    assert two_way_identification(T, T) == 1.0
    assert retrieval_accuracy(T, T, pool_size=None)["image_top1"] == 1.0
    swapped = T[[1, 0, 2, 3]]
    assert two_way_identification(swapped, T) == pytest.approx((0 + 0 + 1 + 1) / 4)
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
