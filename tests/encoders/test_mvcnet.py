"""MVCNet: its views do what they say, its objective trains, and it classifies like any scikit-learn estimator."""

import numpy as np
import pytest
import torch

from neurodecode.encoders.models.contrastive import info_nce
from neurodecode.encoders.models.mvcnet import MVCNet, frequency_view, spatial_view, time_view
from neurodecode.encoders.deep import MVCNetClassifier


def rhythm_epochs(n=80, n_channels=6, n_times=128, sfreq=128.0, seed=0):
    """Two classes: a 10 Hz rhythm on channel 1 (class a) or on channel 4 (class b), under noise (volts)."""
    rng = np.random.default_rng(seed)
    y = np.where(np.arange(n) % 2, "b", "a")
    t = np.arange(n_times) / sfreq
    X = rng.normal(size=(n, n_channels, n_times))
    phase = rng.uniform(0, 2 * np.pi, n)
    X[y == "a", 1] += 1.5 * np.sin(2 * np.pi * 10 * t + phase[y == "a", None])
    X[y == "b", 4] += 1.5 * np.sin(2 * np.pi * 10 * t + phase[y == "b", None])
    return X * 1e-5, y


def test_views_are_seeded_and_do_what_they_say():
    x = torch.randn(5, 4, 100)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    for view in (time_view, frequency_view, spatial_view):
        a, b = view(x, g()), view(x, g())
        assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, view(x, torch.Generator()))
    shifted = time_view(x, g(), noise=0.0, mask=0.0)                # a circular shift of at most 10 samples
    for i in range(5):
        assert any(torch.equal(shifted[i], x[i].roll(k, dims=-1)) for k in range(-10, 11))
    masked = time_view(x, g(), shift=0.0, noise=0.0)                # one stretch of 10 samples zeroed
    assert ((masked == 0).all(1).sum(1) == 10).all()
    stopped = torch.fft.rfft(frequency_view(x, g(), jitter=0.0), dim=-1).abs()
    orig = torch.fft.rfft(x, dim=-1).abs()
    removed = (stopped < 1e-4).all(1)                               # whole bins removed on every channel
    assert (removed.sum(1) == 5).all() and not removed[:, 0].any()  # 10 % of 50 positive bins, never the mean
    torch.testing.assert_close(stopped[~removed[:, None].expand_as(stopped)],
                               orig[~removed[:, None].expand_as(orig)], atol=1e-4, rtol=1e-4)
    dropped = spatial_view(x, g(), mix=0.0)
    zero = (dropped == 0).all(-1)
    assert torch.equal(dropped[~zero], x[~zero]) and zero.any()


def test_info_nce_rewards_matching_rows():
    a = torch.randn(16, 8)
    assert info_nce(a, a + 0.01 * torch.randn(16, 8), 0.2) < info_nce(a, a[torch.randperm(16)], 0.2)


def test_the_objective_has_both_contrasts_and_trains():
    model = MVCNet(6, 128, 2, embed_dim=8, n_filters=4, width=8, heads=2, proj_dim=8)
    x, y = torch.randn(8, 6, 128), torch.tensor([0, 1] * 4)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.manual_seed(0)
    full = model.loss(x, y, g())
    model.lambda_cv = model.lambda_cm = 0.0
    torch.manual_seed(0)
    assert float(full.detach()) > float(model.loss(x, y, g()).detach())             # the contrastive terms are added
    full.backward()
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("classifier.0"))


@pytest.mark.slow
def test_classifier_learns_rhythms_in_cross_validation_and_round_trips(tmp_path):
    from sklearn.model_selection import cross_val_score

    from neurodecode.core.epochs import Channels, EpochSet
    from neurodecode.core.persistence import load_estimator, save_estimator

    X, y = rhythm_epochs()
    ep = EpochSet(X, 128.0, Channels([f"c{i}" for i in range(6)], ["eeg"] * 6),
                  {"subject": "01", "label": y})
    clf = MVCNetClassifier(embed_dim=8, n_filters=4, width=8, heads=2, proj_dim=8,
                           trainer={"max_epochs": 12, "batch_size": 16, "lr": 3e-3})
    scores = cross_val_score(clf, ep, y, cv=3)                       # an EpochSet as the input
    print(f"\nMVCNet on planted rhythms, 3-fold: {np.round(scores, 3)}")
    assert scores.mean() >= 0.85
    clf.fit(X[:60], y[:60])
    assert clf.history_[-1]["train_loss"] < clf.history_[0]["train_loss"]
    assert clf.transform(X).shape == (80, 16) and clf.predict_proba(X[60:]).shape == (20, 2)
    save_estimator(clf, tmp_path, "mvcnet")                          # safetensors + JSON, no pickle
    np.testing.assert_allclose(load_estimator(tmp_path, "mvcnet").predict_proba(X[60:]), clf.predict_proba(X[60:]),
                               atol=1e-6)
    with pytest.raises(ValueError, match=r"field 'X': expected epochs of 6 channels × 128 times as in fit"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match=r"field 'y': expected at least 2 classes"):
        MVCNetClassifier().fit(X, np.zeros(80))
