"""Temporal response functions: MNE's ReceptiveField on epochs, equal to MNE called directly, recovering a planted
kernel, scored on held-out epochs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from neurodecode.alignment import temporal_response_function
from neurodecode.core.epochs import Channels, EpochSet

SFREQ = 64.0


def _planted(n=30, n_times=256, seed=0):
    """Channel A = the stimulus convolved with a half-sine kernel (0-190 ms) + noise; B = half of it + more noise;
    C = noise alone."""
    rng = np.random.default_rng(seed)
    stim = rng.normal(size=(n, n_times))
    kernel = np.sin(np.pi * np.arange(13) / 12)
    resp = np.stack([np.convolve(s, kernel)[:n_times] for s in stim])
    data = np.stack([resp + 0.5 * rng.normal(size=(n, n_times)), 0.5 * resp + rng.normal(size=(n, n_times)),
                     rng.normal(size=(n, n_times))], axis=1)
    ep = EpochSet(data.astype(np.float32), SFREQ, Channels(["A", "B", "C"], "eeg"),
                  pd.DataFrame({"subject": "1", "trial": np.arange(n)}))
    return ep, stim, kernel


def test_the_trf_recovers_a_planted_kernel_and_equals_mnes_receptive_field():
    from mne.decoding import ReceptiveField
    from sklearn.model_selection import KFold

    ep, stim, kernel = _planted()
    res = temporal_response_function(ep, stim, tmin=0.0, tmax=0.25, feature_names=["envelope"])
    assert res.coefs.shape == (3, 1, 17) and res.delays[1] == pytest.approx(1 / SFREQ)
    np.testing.assert_allclose(res.coefs[0, 0, :13], kernel, atol=0.05)
    assert np.abs(res.coefs[0, 0, 13:]).max() < 0.05                 # nothing after the kernel ends
    r = res.scores.mean(axis=0)
    assert r[0] > 0.95 and 0.5 < r[1] < r[0] and abs(r[2]) < 0.1      # A best, B less, C nothing
    # MNE directly, same folds
    X, Y = stim.T[:, :, None], ep.data.astype(np.float64).transpose(2, 0, 1)
    rf = ReceptiveField(0.0, 0.25, SFREQ, estimator=1.0, scoring="corrcoef")
    theirs = [rf.fit(X[:, tr], Y[:, tr]).score(X[:, te], Y[:, te])
              for tr, te in KFold(5, shuffle=True, random_state=0).split(np.arange(30))]
    np.testing.assert_allclose(res.scores, theirs, rtol=1e-10)
    np.testing.assert_allclose(res.coefs, rf.fit(X, Y).coef_.reshape(3, 1, -1), rtol=1e-10)


def test_the_trf_figure_and_bad_inputs(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    ep, stim, _ = _planted(n=12)
    res = temporal_response_function(ep, stim, tmin=0.0, tmax=0.25, cv=3)
    fig = res.plot(path=tmp_path / "trf.png")
    assert len(fig.axes[0].lines) == 4 and (tmp_path / "trf.png").is_file()   # 3 channels + the zero line
    with pytest.raises(ValueError, match=r"field 'stimulus': expected \(n_epochs, n_features, n_times\)"):
        temporal_response_function(ep, stim[:, :100], tmin=0.0, tmax=0.25)
    bad = stim.copy()
    bad[0, 3] = np.nan
    with pytest.raises(ValueError, match="field 'stimulus': expected finite values, got 1"):
        temporal_response_function(ep, bad, tmin=0.0, tmax=0.25)
    with pytest.raises(ValueError, match="field 'tmax'"):
        temporal_response_function(ep, stim, tmin=0.2, tmax=0.1)
    with pytest.raises(ValueError, match="field 'cv'"):
        temporal_response_function(ep, stim, tmin=0.0, tmax=0.25, cv=40)
    with pytest.raises(ValueError, match="field 'channels'"):
        res.plot(channels=["Z"])
