"""MindEye's two-stage aligner: mapper, then a diffusion prior trained on the mapper's out-of-fold predictions."""

import numpy as np
import pytest

from neurodecode.alignment.aligners import PriorAlignment, RidgeAlignment, TwoStageAlignment


def test_two_stage_fits_the_prior_on_out_of_fold_predictions_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(12, 4))                        # 12 stimuli, 3 repeats each
    Y = np.repeat(centres, 3, axis=0)
    X = Y @ rng.normal(size=(4, 20)) + 0.3 * rng.normal(size=(36, 20))
    prior = PriorAlignment(num_layers=1, num_attention_heads=2, attention_head_dim=8, timesteps=10, n_samples=1,
                           trainer={"max_epochs": 30, "batch_size": 12})
    model = TwoStageAlignment(RidgeAlignment(), prior, cv=3).fit(X, Y)
    pred = model.predict(X)
    assert pred.shape == (36, 4) and np.isfinite(pred).all()
    np.testing.assert_allclose(model.mapper_.predict(X), RidgeAlignment().fit(X, Y).predict(X), atol=1e-10)
    model.save(tmp_path / "a")
    with pytest.raises(FileExistsError, match="already there; pass overwrite=True to replace it"):
        model.save(tmp_path / "a")
    again = TwoStageAlignment.load(tmp_path / "a")
    np.testing.assert_allclose(again.predict(X), pred, atol=1e-5)
    with pytest.raises(ValueError, match=r"field 'cv': expected 2 ≤ cv ≤ the 12 distinct targets"):
        TwoStageAlignment(RidgeAlignment(), prior, cv=20).fit(X, Y)
