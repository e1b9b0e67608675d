"""Ridge alignment and retrieval metrics: scikit-learn / brute-force references, known answers, real digits69."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV

from neurodecode.alignment import RidgeAlignment
from neurodecode.evaluation.metrics import pixcorr, ssim
from neurodecode.evaluation.retrieval import gallery_rank, retrieval_accuracy, similarity, two_way_identification


def data(n=40, p=100, q=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p)
    Y = X @ rng.normal(size=(p, q)) + 5 * rng.normal(size=(n, q))
    return X, Y


def test_ridge_equals_scikit_learn_loo_and_fit():
    X, Y = data()
    alphas = np.logspace(-1, 4, 11)
    ours = RidgeAlignment(alphas=alphas, standardize=False).fit(X, Y)
    ref = RidgeCV(alphas=alphas, store_cv_results=True).fit(X, Y)
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_results_.mean(0).T, rtol=1e-8)
    assert ours.alpha_[0] == ref.alpha_
    fixed = Ridge(alpha=ref.alpha_).fit(X, Y)
    np.testing.assert_allclose(ours.coef_, fixed.coef_, atol=1e-10)
    np.testing.assert_allclose(ours.predict(X), fixed.predict(X), atol=1e-9)


def test_ridge_kfold_per_target_alphas_and_standardisation():
    X, Y = data(seed=1)
    Y[:, 1:] = np.random.default_rng(4).normal(size=(40, 4))  # pure noise: large alphas win
    Y[:, 0] = X[:, 0] * 3 + 0.01 * np.random.default_rng(2).normal(size=40)  # an easy target: a small alpha
    m = RidgeAlignment(alphas=np.logspace(-3, 5, 9), alpha_per_target=True, cv=5).fit(X, Y)
    assert m.alpha_.shape == (5,) and m.alpha_[0] < np.median(m.alpha_[1:])
    for j, a in enumerate(m.alpha_):  # each target equals a standardised ridge with its alpha
        Xs = (X - X.mean(0)) / X.std(0)
        ref = Ridge(alpha=a).fit(Xs, Y[:, j])
        np.testing.assert_allclose(m.predict(X)[:, j], ref.predict(Xs), atol=1e-8)


def test_ridge_bad_input():
    X, Y = data()
    with pytest.raises(ValueError, match=r"field 'y': expected one target row per sample \(40\), got 39"):
        RidgeAlignment().fit(X, Y[:39])
    with pytest.raises(ValueError, match=r"field 'alphas': expected positive penalties"):
        RidgeAlignment(alphas=[0.0, 1.0]).fit(X, Y)
    with pytest.raises(ValueError, match=r"field 'X': expected 100 features as in fit, got 99"):
        RidgeAlignment().fit(X, Y).predict(X[:, :99])
    with pytest.raises(ValueError, match=r"field 'cv': expected None or 2 <= folds <= n_samples = 40, got 50"):
        RidgeAlignment(cv=50).fit(X, Y)


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


@pytest.mark.realdata
def test_digits69_ridge_in_pixel_space(shared_data):
    from neurodecode.loaders.precomputed import DIGITS69, load_mat

    ep = load_mat(shared_data / "fmri_digits69" / "digit69_28x28.mat", **DIGITS69)
    st = ep.stimuli.set_index("stimulus")
    Y = np.stack([st.loc[s, "pixels"] for s in ep.table["stimulus"]]).astype(float) / 255.0
    X = ep.data[:, :, 0]
    train = (ep.table["split"] == "train").to_numpy()
    X = (X - X[train].mean(0)) / X[train].std(0)
    P = RidgeAlignment().fit(X[train], Y[train]).predict(X[~train])
    figures = {"pixcorr": pixcorr(P, Y[~train]), "two_way": two_way_identification(P, Y[~train]),
               **retrieval_accuracy(P, Y[~train], pool_size=None, metric="pearson"),
               "ssim": ssim(P.reshape(-1, 28, 28), Y[~train].reshape(-1, 28, 28))}
    print(f"\ndigits69 ridge, pixel space: {figures}")
    assert figures["pixcorr"] == pytest.approx(0.787, abs=0.005)
    assert figures["two_way"] >= 0.93 and figures["image_top1"] >= 0.60


def test_aligner_configs_instantiate_and_refuse_unknown_keys():
    from neurodecode import build
    from neurodecode.alignment import LearnedAlignment, PriorAlignment
    from neurodecode.core.configs import CONF_DIR

    names = sorted(p.stem for p in (CONF_DIR / "aligner").glob("*.yaml"))
    assert names == ["mlp", "prior", "ridge", "tiny_prior"]
    models = {n: build("aligner", n) for n in names}
    assert isinstance(models["mlp"], LearnedAlignment) and isinstance(models["prior"], PriorAlignment)
    assert isinstance(models["ridge"], RidgeAlignment) and len(models["ridge"].alphas) == 17
    assert build("aligner", "mlp", ["contrastive=infonce", "max_epochs=7"]).max_epochs == 7
    with pytest.raises(ValueError, match=r"overrides name unknown keys \['epochs'\]"):
        build("aligner", "mlp", ["epochs=7"])
    with pytest.raises(FileNotFoundError, match=r"no aligner config 'svm' \(known: \['mlp', 'prior'"):
        build("aligner", "svm")


@pytest.mark.realdata
def test_digits69_learned_mapper_beats_ridge_in_pixel_space(shared_data):
    from conftest import load_script

    from neurodecode import build
    from neurodecode.evaluation.metrics import score_outputs

    script = load_script("eval_alignment")
    X, images, train = script.load_digits69(shared_data / "fmri_digits69" / "digit69_28x28.mat")
    Y = images.reshape(len(images), -1)
    scores = {}
    for name in ("ridge", "mlp"):
        P = build("aligner", name).fit(X[train], Y[train]).predict(X[~train])
        tab = score_outputs("retrieval", P, Y[~train], k=1, pool_size=None, metric="pearson").table
        scores[name] = tab.set_index("metric")["value"].to_dict()
    print(f"\ndigits69 pixel space, ridge {scores['ridge']}, mlp (seed 0) {scores['mlp']}")
    assert scores["ridge"]["two_way"] == pytest.approx(0.933, abs=0.001)
    assert scores["mlp"]["two_way"] >= 0.93 and scores["mlp"]["image_top1"] >= 0.60
    assert scores["mlp"]["two_way"] > scores["ridge"]["two_way"]
    assert scores["mlp"]["image_top1"] > scores["ridge"]["image_top1"]
