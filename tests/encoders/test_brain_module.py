"""The MEG brain module: its shapes and subject layers, the simulated MEG subjects on real sensors, and a training
run (CLIP + MSE onto image latents) that retrieves held-out digits above chance beside its ridge baseline."""

import json

import numpy as np
import pytest
import torch

from neurodecode.encoders.models.brain_module import BrainModule, brain_module_loss
from neurodecode.encoders.models.tokenizers import SignalSpec


def _spec(n=10):
    g = torch.Generator().manual_seed(0)
    return SignalSpec(torch.randn(n, 3, generator=g) * 0.05, torch.full((n,), 1, dtype=torch.long), 100.0)


def test_brain_module_shapes_subject_layers_and_errors():
    torch.manual_seed(0)
    model = BrainModule(n_times=60, embed_dim=8, n_subjects=2, n_spatial=8, hidden=8, depth=2, out_channels=16,
                        sfreq=120.0, subjects=["a", "b"]).eval()
    x = torch.randn(4, 10, 50)                                     # 0.5 s at 100 Hz → 60 samples at 120 Hz
    a = model(x, _spec(), torch.tensor([0, 0, 0, 0]))
    assert a.shape == (4, 8)
    with torch.no_grad():
        model.subject_layers.weight[1] *= 2
    assert not torch.allclose(a, model(x, _spec(), torch.tensor([1, 1, 1, 1])))
    assert model.subject_index(["b", "a"]).tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"field 'subject': expected subjects the brain module has layers for "
                                         r"\['a', 'b'\], got \['c'\]"):
        model.subject_index(["c"])
    with pytest.raises(ValueError, match=r"field 'x': expected epochs of 60 samples at 120 Hz, got 72"):
        model(torch.randn(1, 10, 60), _spec(), torch.tensor([0]))
    p, t = torch.randn(6, 8), torch.randn(6, 8)
    assert torch.isclose(brain_module_loss(p, t, 0.0), torch.nn.functional.mse_loss(p, t))
    assert brain_module_loss(t, t, 1.0) < brain_module_loss(p, t, 1.0)


@pytest.mark.slow
@pytest.mark.realdata
def test_simulated_meg_subjects_sit_on_the_real_sensors(shared_data):
    import mne

    from neurodecode.loaders.simulate import simulated_meg_subject

    sensors = shared_data / "mne_small" / "test-ave.fif.gz"
    ep = simulated_meg_subject(sensors, n_subjects=2, n_train=40, n_test=10)
    real = mne.read_evokeds(sensors, verbose="error")[0].pick("meg", exclude="bads")
    assert ep.data.shape == (100, len(real.ch_names), 73) and list(ep.channels.names) == real.ch_names
    assert set(ep.channels.types) == {"meg-mag", "meg-grad"} and np.isfinite(ep.channels.pos).all()
    assert ep.subjects == ["sim-meg-01", "sim-meg-02"] and ep.provenance[-1]["note"].startswith("SIMULATED")
    mag = np.array(ep.channels.types) == "meg-mag"
    m, g = np.abs(ep.data[:, mag]).mean(), np.abs(ep.data[:, ~mag]).mean()
    assert 1e-15 < m < 1e-12 and 3 * m < g < 1e-10                # femtotesla magnetometers, T/m gradiometers
    same = ep.table.groupby("subject")["stimulus"].apply(set)
    assert same.iloc[0] == same.iloc[1]                              # both subjects see the same digits
    with pytest.raises(FileNotFoundError, match=r"nothing.fif: field 'sensors': expected a FIF file of evoked"):
        simulated_meg_subject(shared_data / "nothing.fif")


@pytest.mark.slow
@pytest.mark.realdata
def test_meg_brain_module_training_run_retrieves_above_chance(shared_data, tmp_path):
    from neurodecode.core.configs import compose
    from neurodecode.pipeline.checkpoint import DecodingPipeline
    from neurodecode.pipeline.fitting import run

    cfg = compose(["experiment=meg_brain_module", f"data.sensors={shared_data / 'mne_small' / 'test-ave.fif.gz'}",
                   "data.n_train=160", "data.n_test=30", "encoder.trainer.max_epochs=25",
                   "encoder.n_spatial=32", "encoder.hidden=32", "encoder.depth=2", "encoder.out_channels=64"])
    metrics = run(cfg, tmp_path / "run")
    values = {r["metric"]: r["value"] for r in metrics["scores"] if r["pipeline"] == "meg_brain_module"}
    base = {r["metric"]: r["value"] for r in metrics["baseline"]["scores"]}
    print(f"\nsimulated MEG (2 subjects, 160 training digits): brain module two-way {values['two_way']:.3f}, "
          f"top-5 {values['image_top5']:.3f}; ridge baseline {base['two_way']:.3f} / {base['image_top5']:.3f}")
    assert values["two_way"] >= 0.7 and values["image_top5"] >= 2.5 * 5 / 30    # chance 0.5 and 0.167
    pipe = DecodingPipeline.load(tmp_path / "run" / "checkpoint")
    from neurodecode.core.storage import load

    held = load(tmp_path / "run" / "heldout_epochs.h5")
    lat = pipe.latents(held)
    assert lat.shape == (60, 32) and np.isfinite(lat).all()
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["baseline"]["name"] == "baseline: ridge on the z-scored epochs"
