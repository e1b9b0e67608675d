"""Encoding models (image → brain): ridge per voxel, noise ceilings, voxel selection, the transformer encoder."""

import numpy as np
import pytest

from neurodecode.alignment import RidgeAlignment
from neurodecode.alignment.encoding_models import (RidgeEncodingModel, TransformerEncodingModel, encoding_scores,
                                                   image_patches, noise_ceiling, select_voxels, voxel_correlations)


def planted(n=120, n_features=20, n_voxels=40, n_informative=10, seed=0):
    """Responses of which the first ``n_informative`` voxels are linear in the features (plus noise)."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(n, n_features))
    Y = rng.normal(size=(n, n_voxels))
    Y[:, :n_informative] += 2.0 * F @ rng.normal(size=(n_features, n_informative)) / np.sqrt(n_features)
    return F, Y


def test_voxel_correlations_equal_numpy():
    rng = np.random.default_rng(1)
    P, T = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    want = [np.corrcoef(P[:, j], T[:, j])[0, 1] for j in range(5)]
    np.testing.assert_allclose(voxel_correlations(P, T), want, rtol=1e-12)
    T[:, 2] = 1.0
    assert np.isnan(voxel_correlations(P, T)[2])
    with pytest.raises(ValueError, match=r"field 'pred': expected the shape of 'true' \(30, 5\), got \(30, 4\)"):
        voxel_correlations(P[:, :4], T)


def test_noise_ceiling_matches_the_planted_reliability():
    """Signal variance 1, noise variance 1, 4 repeats: the mean response correlates with the signal at
    sqrt(1 / (1 + 1/4)) = 0.894."""
    rng = np.random.default_rng(2)
    signal = rng.normal(size=(200, 30))
    Y = np.repeat(signal, 4, axis=0) + rng.normal(size=(800, 30))
    stim = np.repeat(np.arange(200), 4)
    ceiling = noise_ceiling(Y, stim)
    assert ceiling.shape == (30,) and abs(ceiling.mean() - np.sqrt(1 / 1.25)) < 0.02
    with pytest.raises(ValueError, match="field 'stimulus': expected at least 3 stimuli shown twice or more"):
        noise_ceiling(Y[:10], np.arange(10))


def test_ridge_encoder_finds_the_informative_voxels_and_selection_uses_them():
    F, Y = planted()
    enc = RidgeEncodingModel().fit(F[:90], Y[:90])
    r = enc.score_voxels(F[90:], Y[90:])
    assert r[:10].mean() > 0.6 and abs(r[10:].mean()) < 0.15
    assert np.median(enc.alpha_[10:]) > 10 * np.median(enc.alpha_[:10])   # noise voxels get a large penalty
    np.testing.assert_allclose(enc.score_voxels(F[90:], Y[90:], ceiling=np.full(40, 0.5)), r / 0.5)
    cv = encoding_scores(F[:90], Y[:90])
    assert cv[:10].min() > cv[10:].max()
    assert set(select_voxels(F[:90], Y[:90], 10)) == set(range(10))
    # decoding the features from the voxels an encoding model predicts best, training trials only
    dec = RidgeAlignment(select_voxels=10).fit(Y[:90], F[:90])
    assert sorted(dec.voxels_) == list(range(10)) and dec.predict(Y[90:]).shape == (30, 20)
    full = RidgeAlignment().fit(Y[:90], F[:90]).predict(Y[90:])
    assert voxel_correlations(dec.predict(Y[90:]), F[90:]).mean() > voxel_correlations(full, F[90:]).mean()
    with pytest.raises(ValueError, match=r"field 'n_voxels': expected an integer in \[1, 40\], got 0"):
        select_voxels(F, Y, 0)
    with pytest.raises(ValueError, match=r"field 'cv': expected 2 <= folds <= n_trials / 2 = 60, got 1"):
        encoding_scores(F, Y, cv=1)


def test_image_patches_are_row_major():
    im = np.arange(2 * 4 * 6).reshape(2, 4, 6)
    P = image_patches(im, 2)
    assert P.shape == (2, 6, 4)
    np.testing.assert_array_equal(P[0, 1], [2, 3, 8, 9])       # second patch of the first row
    np.testing.assert_array_equal(P[1, 3], im[1, 2:4, 0:2].ravel())
    with pytest.raises(ValueError, match=r"divisible by patch=4, got shape \(2, 4, 6\)"):
        image_patches(im, 4)


def test_transformer_encoder_learns_which_token_drives_each_region():
    """Voxels 0-9 respond to token 1's first value, voxels 10-19 to token 5's: region queries must find them."""
    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(160, 8, 4))
    Y = rng.normal(scale=0.3, size=(160, 20))
    Y[:, :10] += tokens[:, 1, :1]
    Y[:, 10:] -= tokens[:, 5, :1]
    regions = np.repeat([0, 1], 10)
    m = TransformerEncodingModel(embed_dim=16, num_heads=2, dropout=0.0, trainer={"max_epochs": 150, "lr": 1e-2}).fit(tokens[:120], Y[:120],
                                                                                          regions)
    r = voxel_correlations(m.predict(tokens[120:]), Y[120:])
    assert r.mean() > 0.8, r.mean()
    assert m.predict(tokens[:3]).shape == (3, 20)
    with pytest.raises(ValueError, match=r"field 'regions': expected a region index ≥ 0 per voxel \(20\)"):
        TransformerEncodingModel(trainer={"max_epochs": 1}).fit(tokens[:10], Y[:10], regions[:5])


@pytest.mark.slow
@pytest.mark.realdata
def test_digits69_encoding_models_and_voxel_selection(shared_data):
    """digits69 (90 train / 10 test): ridge pixels → voxels; on the 500 voxels it predicts best in training
    cross-validation, ridge beside the transformer encoder (4×4 pixel patches); decoding from those voxels."""
    from neurodecode.evaluation.metrics import pixcorr, two_way_identification
    from neurodecode.loaders.precomputed import DIGITS69, load_mat

    ep = load_mat(shared_data / "fmri_digits69" / "digit69_28x28.mat", **DIGITS69)
    st = ep.stimuli.set_index("stimulus")
    images = np.stack([st.loc[s, "pixels"] for s in ep.table["stimulus"]]).astype(float).reshape(-1, 28, 28) / 255
    pix = images.reshape(len(images), -1)
    X = ep.data[:, :, 0].astype(float)
    train = (ep.table["split"] == "train").to_numpy()
    X = (X - X[train].mean(0)) / X[train].std(0)
    r_all = RidgeEncodingModel().fit(pix[train], X[train]).score_voxels(pix[~train], X[~train])
    keep = select_voxels(pix[train], X[train], 500)
    r_ridge = RidgeEncodingModel().fit(pix[train], X[train][:, keep]).score_voxels(pix[~train], X[~train][:, keep])
    tok = image_patches(images, 4)
    tf = TransformerEncodingModel(embed_dim=32).fit(tok[train], X[train][:, keep])
    r_tf = voxel_correlations(tf.predict(tok[~train]), X[~train][:, keep])
    P = RidgeAlignment(select_voxels=500).fit(X[train], pix[train]).predict(X[~train])
    pc, tw = pixcorr(P, pix[~train]), two_way_identification(P, pix[~train])
    print(f"\ndigits69 encoding, held-out r: ridge all voxels {np.nanmean(r_all):.3f}; 500 selected voxels: ridge "
          f"{np.nanmean(r_ridge):.3f}, transformer {np.nanmean(r_tf):.3f}; decoding from them: PixCorr {pc:.3f}, "
          f"two-way {tw:.3f} (all voxels 0.787 / 0.933)")
    assert np.nanmean(r_ridge) > np.nanmean(r_all) + 0.2        # selection on training data finds the visual voxels
    assert np.nanmean(r_tf) > 0.3
    assert pc > 0.79 and tw >= 0.95


def test_the_ridge_config_option_selects_voxels():
    from neurodecode import build

    F, Y = planted()
    model = build("aligner", "ridge", ["select_voxels=10"]).fit(Y[:90], F[:90])
    assert model.select_voxels == 10 and sorted(model.voxels_) == list(range(10))
    assert build("aligner", "ridge").select_voxels is None
