"""β-VAE of epochs: denoised single trials, seeded fits, checkpoints without pickle, the N170 measurement."""

import numpy as np
import pytest

from neurodecode.encoders.deep import BetaVAEFeatures


def erp_epochs(n=120, n_channels=4, n_times=64, noise=2.0, seed=0):
    """Two classes whose evoked responses differ in sign on half the channels, under heavy noise."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n_times)
    wave = np.exp(-((t - 0.3) / 0.06) ** 2) - 0.6 * np.exp(-((t - 0.55) / 0.08) ** 2)
    gains = np.array([1.0, 0.8, -0.6, 0.5])[:n_channels, None]
    y = np.arange(n) % 2
    erp = np.stack([gains * wave, gains * wave * np.where(np.arange(n_channels) % 2, -1, 1)[:, None]])
    X = erp[y] + noise * rng.normal(size=(n, n_channels, n_times))
    return X * 1e-5, y, erp * 1e-5


def corr_to(trials, erp):
    return np.mean([np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(trials, erp)])


def test_reconstructions_are_closer_to_the_evoked_response_than_raw_trials(tmp_path):
    from neurodecode.core.persistence import load_estimator, save_estimator

    X, y, erp = erp_epochs()
    vae = BetaVAEFeatures(latent_dim=4, hidden=16, trainer={"max_epochs": 60, "batch_size": 32}, seed=0)
    vae.fit(X[:100])
    rec = vae.reconstruct(X[100:])
    raw_r, rec_r = corr_to(X[100:], erp[y[100:]]), corr_to(rec, erp[y[100:]])
    print(f"\nsynthetic ERPs: single trials r = {raw_r:.3f} with their evoked response, reconstructions {rec_r:.3f}")
    assert rec.shape == (20, 4, 64) and rec_r > raw_r + 0.1
    Z = vae.transform(X)
    assert Z.shape == (120, 4) and Z.dtype == np.float32
    again = BetaVAEFeatures(latent_dim=4, hidden=16, trainer={"max_epochs": 60, "batch_size": 32}, seed=0).fit(X[:100])
    np.testing.assert_allclose(again.transform(X), Z, atol=1e-5)              # seeded
    save_estimator(vae, tmp_path, "vae")                                      # safetensors + JSON, no pickle
    np.testing.assert_allclose(load_estimator(tmp_path, "vae").transform(X), Z, atol=1e-6)
    assert vae.history_[-1]["train_loss"] < vae.history_[0]["train_loss"]
    with pytest.raises(ValueError, match=r"field 'X': expected epochs of 4 channels × 64 times as in fit"):
        vae.transform(X[:, :3])
    with pytest.raises(ValueError, match=r"field 'X': expected finite values"):
        vae.transform(np.full((2, 4, 64), np.nan))
    with pytest.raises(ValueError, match=r"field 'kernel': expected an odd temporal kernel"):
        BetaVAEFeatures(kernel=4).fit(X)


@pytest.mark.slow
@pytest.mark.realdata
def test_beta_vae_on_muse_n170_denoises_trials_towards_the_subjects_erp(shared_data):
    """One fold of benchmarks/eval_beta_vae.py: the decoder's single trials correlate more with the training trials'
    class-average ERP than the raw test trials do."""
    from sklearn.model_selection import StratifiedKFold

    from neurodecode.core.scores import erp_correlations
    from neurodecode.loaders.public import muse

    ep = muse(shared_data, "N170", "1", scale=1e5)
    X, y = ep.data.astype(np.float64), ep.table["label"].to_numpy()
    tr, te = next(StratifiedKFold(5, shuffle=True, random_state=42).split(X, y))
    out = BetaVAEFeatures(latent_dim=16, trainer={"max_epochs": 10}).fit(X[tr]).reconstruct(X[te])
    res = {"raw": erp_correlations(X[te], y[te], X[tr], y[tr]).mean(),
           "reconstructed": erp_correlations(out, y[te], X[tr], y[tr]).mean()}
    print(f"\nN170 subject 1, one fold: raw trials r = {res['raw']:.3f}, reconstructions {res['reconstructed']:.3f}")
    assert res["reconstructed"] > res["raw"] + 0.05
