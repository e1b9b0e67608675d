"""Aligners: ridge against scikit-learn, the learned mapper and the diffusion prior (fit, predict, save/load, seeds),
the configs, real digits69."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge, RidgeCV

from neurodecode.alignment import LearnedAlignment, RidgeAlignment
from neurodecode.evaluation.metrics import pixcorr, ssim
from neurodecode.core.scores import retrieval_accuracy, two_way_identification

TINY_PRIOR = {"num_layers": 1, "num_attention_heads": 2, "attention_head_dim": 8, "timesteps": 20,
              "trainer": {"max_epochs": 200, "batch_size": 16, "lr": 3e-3}}


def make_data(n=48, p=20, q=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, p, generator=g, dtype=torch.float64)
    Y = X[:, :q] * 2 + 0.1 * torch.randn(n, q, generator=g, dtype=torch.float64)
    return torch.utils.data.TensorDataset(X, Y)


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
    assert names == ["auto", "identity", "mlp", "prior", "ridge", "tiny_prior", "two_stage"]
    models = {n: build("aligner", n) for n in names}
    assert isinstance(models["mlp"], LearnedAlignment) and isinstance(models["prior"], PriorAlignment)
    assert {k: type(v).__name__ for k, v in models["auto"].candidates.items()} == {"ridge": "RidgeAlignment",
                                                                                   "mlp": "LearnedAlignment"}
    assert isinstance(models["two_stage"].mapper, LearnedAlignment) and isinstance(models["two_stage"].prior,
                                                                                   PriorAlignment)
    assert isinstance(models["ridge"], RidgeAlignment) and len(models["ridge"].alphas) == 17
    assert build("aligner", "mlp", ["contrastive=infonce", "trainer.max_epochs=7"]).trainer["max_epochs"] == 7
    with pytest.raises(ValueError, match=r"overrides name unknown keys \['epochs'\]"):
        build("aligner", "mlp", ["epochs=7"])
    X = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_array_equal(models["identity"].fit(X, X).predict(X), X)
    with pytest.raises(ValueError, match=r"aligner=identity expects features that are the target latents \(5, 2\)"):
        models["identity"].fit(X, X[:, :2])
    with pytest.raises(FileNotFoundError, match=r"no aligner config 'svm' \(known: \['auto', 'identity', 'mlp'"):
        build("aligner", "svm")


@pytest.mark.slow
@pytest.mark.realdata
def test_digits69_learned_mapper_beats_ridge_in_pixel_space(shared_data):
    from neurodecode import build
    from neurodecode.evaluation.metrics import score_outputs
    from neurodecode.loaders.public import digits69

    X, images, train = digits69(shared_data / "fmri_digits69" / "digit69_28x28.mat")
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


def test_learned_alignment_fit_predict_save_load(tmp_path):
    data = make_data(n=60)
    X, Y = data.tensors[0].numpy(), data.tensors[1].numpy()
    linear = lambda n_features, n_targets: torch.nn.Linear(n_features, n_targets)  # noqa: E731 - any backbone
    m = LearnedAlignment(backbone=linear, trainer={"max_epochs": 200, "batch_size": 16, "lr": 1e-2}, mixco_fraction=0.2).fit(X[:48], Y[:48])
    P = m.predict(X[48:])
    assert P.shape == (12, 6)
    r = np.corrcoef(P.ravel(), Y[48:].ravel())[0, 1]
    assert r > 0.85, r  # the planted linear map is learned
    assert {"train_bimixco"} <= set(m.history_[0]) and "train_contrastive" in m.history_[-1]
    m.save(tmp_path / "mapper")
    with pytest.raises(ValueError, match="trained with a custom backbone; pass backbone= to rebuild it"):
        LearnedAlignment.load(tmp_path / "mapper")
    again = LearnedAlignment.load(tmp_path / "mapper", backbone=linear)
    np.testing.assert_allclose(again.predict(X[48:]), P, rtol=1e-6)
    mlp = LearnedAlignment(hidden=16, n_blocks=1, trainer={"max_epochs": 2, "batch_size": 16}).fit(X, Y)
    mlp.save(tmp_path / "mlp")
    np.testing.assert_allclose(LearnedAlignment.load(tmp_path / "mlp").predict(X), mlp.predict(X), rtol=1e-6)
    with pytest.raises(ValueError, match="field 'X': expected 20 features as in fit, got 19"):
        m.predict(X[:, :19])
    with pytest.raises(ValueError, match="field 'contrastive': expected one of"):
        LearnedAlignment(contrastive="triplet").fit(X, Y)
    with pytest.raises(FileExistsError):
        m.save(tmp_path / "mapper")


def test_old_flat_trainer_parameters_still_train_with_a_warning(tmp_path):
    X, Y = data(n=40)
    kw = dict(hidden=8, n_blocks=0, seed=1)
    with pytest.warns(FutureWarning, match=r"LearnedAlignment\(max_epochs=..., batch_size=...\) is deprecated; pass trainer="):
        old = LearnedAlignment(**kw, max_epochs=2, batch_size=10).fit(X, Y)
    new = LearnedAlignment(**kw, trainer={"max_epochs": 2, "batch_size": 10}).fit(X, Y)
    np.testing.assert_array_equal(old.predict(X), new.predict(X))
    assert len(old.history_) == 2
    with pytest.raises(ValueError, match=r"field 'trainer': unknown settings \['epochs'\]; expected keys among"):
        LearnedAlignment(**kw, trainer={"epochs": 2}).fit(X, Y)


def test_learned_alignment_is_deterministic():
    data = make_data(n=40)
    X, Y = data.tensors[0].numpy(), data.tensors[1].numpy()
    kw = dict(hidden=16, n_blocks=1, dropout=0.2, trainer={"max_epochs": 5, "batch_size": 10}, seed=4)
    np.testing.assert_array_equal(LearnedAlignment(**kw).fit(X, Y).predict(X), LearnedAlignment(**kw).fit(X, Y).predict(X))


def cluster_data(n=64, seed=0):
    """Targets in two tight clusters chosen by the sign of the first brain feature."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10))
    X[:, 0] = np.sign(X[:, 0]) * (1 + np.abs(X[:, 0]))  # a margin between the classes
    centres = rng.normal(size=(2, 8)) * 3
    cls = (X[:, 0] > 0).astype(int)
    return X, centres[cls] + 0.1 * rng.normal(size=(n, 8)), cls, centres


@pytest.mark.slow
def test_diffusion_prior_samples_the_right_cluster_reproducibly(tmp_path):
    from neurodecode.alignment import PriorAlignment

    X, Y, cls, centres = cluster_data()
    m = PriorAlignment(**TINY_PRIOR).fit(X[:48], Y[:48])
    P = m.predict(X[48:])
    assert P.shape == (16, 8)
    nearest = np.argmin(((P[:, None] - centres[None]) ** 2).sum(-1), axis=1)
    assert (nearest == cls[48:]).mean() >= 0.9
    np.testing.assert_array_equal(m.predict(X[48:]), P)  # seeded sampling
    m.save(tmp_path / "prior")
    np.testing.assert_allclose(PriorAlignment.load(tmp_path / "prior").predict(X[48:]), P, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"field '_target_': expected 'neurodecode.alignment.aligners.LearnedAlignment'"):
        LearnedAlignment.load(tmp_path / "prior")
    with pytest.raises(ValueError, match=r"field 'n_samples': expected a value in \[1, inf\), got 0"):
        PriorAlignment(**{**TINY_PRIOR, "n_samples": 0}).fit(X[:48], Y[:48])  # refused before training


def test_diffusion_prior_module_shapes_and_errors():
    from neurodecode.alignment.prior import DiffusionPrior

    prior = DiffusionPrior(10, 8, n_tokens=3, num_layers=1, num_attention_heads=2, attention_head_dim=8, timesteps=10)
    brain = torch.randn(4, 10)
    assert prior.loss(brain, torch.randn(4, 8)).ndim == 0
    out = prior.sample(brain, num_inference_steps=5, guidance_scale=2.0, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 8)
    with pytest.raises(ValueError, match=r"field 'brain': expected \(batch, 10\), got \(4, 9\)"):
        prior.sample(torch.randn(4, 9))
    with pytest.raises(ValueError, match=r"field 'target': expected \(batch, 8\), got \(4, 7\)"):
        prior.loss(brain, torch.randn(4, 7))


def test_chaining_aligners_checks_the_latent_dimension():
    """A prior trained on 8-d latents refuses a mapper's 6-d predictions with a clear error."""
    from neurodecode.alignment import PriorAlignment

    X, Y, _, _ = cluster_data(n=32)
    prior = PriorAlignment(**{**TINY_PRIOR, "trainer": {"max_epochs": 1}}).fit(Y, Y)
    mapper = LearnedAlignment(hidden=8, n_blocks=0, trainer={"max_epochs": 1, "batch_size": 16}).fit(X, Y[:, :6])
    with pytest.raises(ValueError, match="field 'X': expected 8 features as in fit, got 6"):
        prior.predict(mapper.predict(X))


@pytest.mark.parametrize("n", [0, -3, 2.5, True])
def test_a_pca_target_with_no_components_is_refused(n):
    import pandas as pd

    from neurodecode.alignment.targets import TargetSpace

    rng = np.random.default_rng(0)
    stimuli = pd.DataFrame({"stimulus": [f"s{i}" for i in range(6)],
                            "pixels": [rng.uniform(0, 1, 64) for _ in range(6)], "height": 8, "width": 8})
    with pytest.raises(ValueError, match=r"field 'objective.n_components': expected an integer >= 1"):
        TargetSpace("pca", n_components=n).fit(stimuli, stimuli["stimulus"])
