"""braindecode's model zoo as neurodecode encoders (:class:`~neurodecode.encoders.deep.BraindecodeModel`): the
dependency set imports together, any model builds by name from the epochs' own contract, trains on the one
trainable-estimator base, round-trips through a checkpoint component, and runs in scikit-learn, ``neurodecode
evaluate`` and a training run; unknown names and unmet input needs fail naming the field."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pytest

from neurodecode.encoders.deep import BraindecodeModel, braindecode_models
from neurodecode.loaders.simulate import simulated_epochs

ROOT = Path(__file__).resolve().parents[2]
SMALL_SHALLOW = {"n_filters_time": 8, "filter_time_length": 9, "n_filters_spat": 8, "pool_time_length": 16,
                 "pool_time_stride": 8}


def _epochs(n_epochs=48, seed=0):
    return simulated_epochs(n_epochs=n_epochs, n_channels=8, n_times=128, sfreq=128.0, effect=2.0, seed=seed)


def _pins() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    return {d.split(">")[0].split("=")[0].split("<")[0].strip(): d for d in deps}


def test_torchaudio_and_braindecode_import_beside_the_pinned_torch():
    """torchaudio's metadata does not stop a wrong pairing (pip check passes either way): a mismatched build fails
    only at import (undefined symbol / CUDA build). Import it in a fresh interpreter next to transformers' image
    processors — what broke before — and run a torchaudio op and a braindecode filter module."""
    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    pins = _pins()
    assert {"torch", "torchaudio", "braindecode"} <= set(pins)
    code = ("import torch, torchaudio, braindecode\n"
            "from braindecode.modules.filter import FilterBankLayer\n"
            "from transformers import AutoImageProcessor, CLIPImageProcessor\n"
            "x = torchaudio.functional.resample(torch.randn(1, 200), 200, 100)\n"
            "assert x.shape == (1, 100), x.shape\n"
            "print(torch.__version__, torchaudio.__version__, braindecode.__version__)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"torchaudio/braindecode do not import beside torch:\n{done.stderr[-2000:]}"
    torch_v, audio_v, bd_v = done.stdout.split()
    for name, version in (("torch", torch_v), ("torchaudio", audio_v), ("braindecode", bd_v)):
        spec = pins[name][len(name):].split(";")[0].strip()
        assert Version(version.split("+")[0]) in SpecifierSet(spec), f"{name} {version} is outside the pin {spec}"


def test_unknown_model_names_fail_with_the_list_of_models():
    ep = _epochs(8)
    with pytest.raises(ValueError, match=r"field 'model': expected a braindecode model among \[.*'EEGNet'.*"
                                         r"'ShallowFBCSPNet'.*\], got 'EEGNetv4'"):
        BraindecodeModel("EEGNetv4").fit(ep, ep.table["label"])
    names = braindecode_models()
    assert {"EEGNet", "ShallowFBCSPNet", "ATCNet", "EEGConformer", "Labram", "CBraMod", "BrainModule"} <= set(names)


def test_unmet_input_needs_name_the_field():
    ep = _epochs(8)
    y = ep.table["label"]
    # LaBraM's channel embedding is a table of 10-20 names: simulated channels S01 … have none
    with pytest.raises(ValueError, match=r"BraindecodeModel: braindecode's Labram cannot take these epochs "
                                         r"\(n_chans=8, n_times=128, sfreq=128.0, chs_info given\): ch_names .*'S01'"):
        BraindecodeModel("Labram", model_kwargs={"patch_size": 64}).fit(ep, y)
    # CBraMod cuts 200-sample patches: 128 samples are too few
    with pytest.raises(ValueError, match=r"braindecode's CBraMod cannot take these epochs \(n_chans=8, n_times=128"):
        BraindecodeModel("CBraMod").fit(ep, y)
    # an array input has no sampling rate, and braindecode would assume one (ATCNet: 250 Hz): refused
    with pytest.raises(ValueError, match=r"BraindecodeModel: field 'sfreq': expected the sampling rate of array "
                                         r"inputs \(an EpochSet or mne.Epochs brings its own\), got None"):
        BraindecodeModel("ATCNet").fit(ep.data, y)
    fitted = BraindecodeModel("EEGNet", trainer={"max_epochs": 1}).fit(ep, y)
    with pytest.raises(ValueError, match=r"field 'X': expected epochs at the training rate and channels \(128.0 Hz"):
        fitted.predict(simulated_epochs(n_epochs=8, n_channels=8, n_times=128, sfreq=100.0))
    with pytest.raises(ValueError, match=r"BraindecodeModel: field 'y': expected at least 2 classes"):
        BraindecodeModel("EEGNet").fit(ep, np.array(["a"] * len(y)))


def test_a_model_learns_a_planted_effect_and_its_embedding_feeds_a_linear_model():
    """ShallowFBCSPNet (a log-power model) on a planted 10 Hz effect: held-out accuracy well above chance, the
    same from the same seed; ``transform`` gives the final layer's input."""
    from sklearn.linear_model import LogisticRegression

    ep, test = _epochs(64), _epochs(40, seed=1)
    y, y_test = ep.table["label"].to_numpy(), test.table["label"].to_numpy()
    est = BraindecodeModel("ShallowFBCSPNet", model_kwargs=SMALL_SHALLOW, trainer={"max_epochs": 30}).fit(ep, y)
    assert est.signal_ == {"n_chans": 8, "n_times": 128, "sfreq": 128.0, "ch_names": list(ep.channels.names),
                           "ch_types": ["eeg"] * 8}
    assert est.score(test, y_test) >= 0.85
    proba = est.predict_proba(test)
    assert proba.shape == (40, 2) and np.allclose(proba.sum(1), 1)
    again = BraindecodeModel("ShallowFBCSPNet", model_kwargs=SMALL_SHALLOW, trainer={"max_epochs": 30}).fit(ep, y)
    np.testing.assert_allclose(again.predict_proba(test), proba, rtol=1e-5, atol=1e-6)
    emb = est.transform(test)
    assert emb.shape[0] == 40 and emb.shape[1] == est.model_.final_layer.conv_classifier.in_channels * \
        (emb.shape[1] // est.model_.final_layer.conv_classifier.in_channels)
    assert LogisticRegression().fit(est.transform(ep), y).score(emb, y_test) >= 0.8


def test_round_trip_keeps_predictions_and_channel_positions(tmp_path):
    from neurodecode.core.persistence import load_component, save_component

    ep = _epochs(24)
    est = BraindecodeModel("EEGNet", trainer={"max_epochs": 2}).fit(ep, ep.table["label"])
    save_component(est, tmp_path / "eegnet")
    assert sorted(p.name for p in (tmp_path / "eegnet").iterdir() if p.suffix != ".json") == \
        ["chs_info.npy", "estimator.npz", "model.safetensors"]
    again = load_component(tmp_path / "eegnet")
    np.testing.assert_allclose(again.predict_proba(ep), est.predict_proba(ep), rtol=1e-6, atol=1e-7)
    assert [c["ch_name"] for c in again._chs] == list(ep.channels.names)
    np.testing.assert_allclose(np.array([c["loc"][:3] for c in again._chs]), ep.channels.pos)


def test_augmentations_are_braindecode_transforms_seeded_by_the_estimator():
    ep = _epochs(32)
    y = ep.table["label"].to_numpy()
    spec = [{"name": "FTSurrogate", "probability": 0.5}, {"name": "ChannelsDropout", "probability": 0.5,
                                                          "p_drop": 0.2}]
    fits = [BraindecodeModel("EEGNet", augmentations=spec, trainer={"max_epochs": 2}).fit(ep, y) for _ in range(2)]
    np.testing.assert_allclose(fits[0].predict_proba(ep), fits[1].predict_proba(ep), rtol=1e-6, atol=1e-7)
    plain = BraindecodeModel("EEGNet", trainer={"max_epochs": 2}).fit(ep, y)
    assert not np.allclose(plain.predict_proba(ep), fits[0].predict_proba(ep))
    with pytest.raises(ValueError, match=r"field 'augmentations\[1\].name': expected a braindecode transform among "
                                         r"\[.*'FTSurrogate'.*\], got 'Mixup2'"):
        BraindecodeModel("EEGNet", augmentations=[spec[0], {"name": "Mixup2"}]).fit(ep, y)


def test_in_a_scikit_learn_pipeline_and_the_evaluation_harness():
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline

    from neurodecode.evaluation.classification import evaluate

    ep = _epochs(40)
    y = ep.table["label"].to_numpy()
    pipe = make_pipeline(BraindecodeModel("ShallowFBCSPNet", model_kwargs=SMALL_SHALLOW, sfreq=128.0,
                                          trainer={"max_epochs": 20}))
    scores = cross_val_score(pipe, ep.data, y, cv=2)
    assert scores.shape == (2,) and scores.mean() >= 0.75
    result = evaluate(ep, BraindecodeModel("ShallowFBCSPNet", model_kwargs=SMALL_SHALLOW,
                                           trainer={"max_epochs": 20}), "within_session", n_splits=2, seed=0)
    summary = result.summary().set_index("metric")
    assert summary.loc["accuracy", "n_folds"] == 4 and summary.loc["accuracy", "mean"] >= 0.75   # 2 subjects × 2


@pytest.mark.parametrize("name", ["braindecode", "eegnet", "shallow_fbcsp", "atcnet", "eeg_conformer"])
def test_every_braindecode_config_builds_its_model(name):
    from neurodecode.core.configs import build

    est = build("encoder", name, ["trainer.max_epochs=1"])
    assert isinstance(est, BraindecodeModel) and est.model in braindecode_models()
    ep = simulated_epochs(n_epochs=8, n_channels=4, n_times=480, sfreq=160.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        est.fit(ep, ep.table["label"])
    assert est.predict(ep).shape == (8,)


@pytest.mark.slow
@pytest.mark.realdata
def test_neurodecode_evaluate_runs_a_braindecode_model_beside_the_baseline(shared_data, tmp_path, capsys,
                                                                           monkeypatch):
    import json

    from neurodecode import save
    from neurodecode.cli.main import main
    from neurodecode.core.training import Trainer
    from neurodecode.loaders.public import eegmmidb

    trained, fit = [], Trainer.fit
    monkeypatch.setattr(Trainer, "fit", lambda self, *a, **k: (trained.append(self.max_epochs), fit(self, *a, **k))[1])
    save(eegmmidb(shared_data, runs=(4, 8)), tmp_path / "s001.h5")
    assert main(["evaluate", str(tmp_path / "s001.h5"), "--encoder", "eegnet", "trainer.max_epochs=3",
                 "--n-splits", "2", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "eegnet (BraindecodeModel EEGNet):" in out and "baseline: tangent_space + LR:" in out
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    accuracy = [s for s in scores["scores"] if s["metric"] == "accuracy"]
    assert len(accuracy) == 2 and all(0.0 <= s["value"] <= 1.0 for s in accuracy)      # 2 folds
    assert trained == [3, 3]                          # trainer.KEY=VALUE reaches the encoder's trainer (0.4: ignored)


@pytest.mark.slow
@pytest.mark.realdata
def test_a_training_run_with_a_braindecode_encoder_reloads_and_decodes_a_live_stretch(shared_data, tmp_path):
    """``neurodecode train`` with ``encoder=eegnet`` (EEGMMIDB S001 imagery): the checkpoint holds the network as a
    component; reloaded, it gives the run's own latents, and ``neurodecode stream``'s decoder gives the offline
    latent of an epoch from a padded stretch of the recording (what it reads from LSL)."""
    import mne

    from neurodecode.pipeline import DecodingPipeline
    from neurodecode.pipeline.streaming import OnlineDecoder, motor_imagery_checkpoint, offline_predictions

    checkpoint = motor_imagery_checkpoint(tmp_path, shared_data, "eegnet", ["encoder.trainer.max_epochs=3"])
    index = (checkpoint / "model_index.json").read_text()
    assert "BraindecodeModel" in index
    run = shared_data / "eegmmidb_S001" / "S001R04.edf"
    epochs, latents, _ = offline_predictions(checkpoint, run)
    again = DecodingPipeline.load(checkpoint, heads=[])
    np.testing.assert_allclose(again.latents(epochs), latents, rtol=1e-5, atol=1e-6)
    raw = mne.io.read_raw_edf(run, preload=True, verbose="error")
    onset = float(raw.annotations.onset[1])                        # the first T1/T2 cue
    decoder = OnlineDecoder(checkpoint, "no-such-stream", pad=1.0)
    stretch = raw.copy().crop(onset - 1.0, onset + 3.0)
    first = int(np.flatnonzero(np.isclose(epochs.table["onset"].to_numpy(), onset, atol=1 / 160))[0])
    out = decoder._decode(stretch, raw.annotations.description[1], onset - stretch.first_time)
    np.testing.assert_allclose(out["latent"], latents[first], atol=1e-4)


def test_licences_come_from_braindecode_metadata_and_noncommercial_models_need_a_request():
    """LaBraM and CBraMod are BSD-3 in braindecode's metadata (so neurodecode uses braindecode's); its BrainModule is
    cc-by-nc-4.0 (so neurodecode keeps its own brain module): it builds only on request."""
    from neurodecode.encoders.deep import braindecode_license

    assert braindecode_license("Labram") == braindecode_license("CBraMod") == "bsd-3-clause"
    assert braindecode_license("BrainModule") == "cc-by-nc-4.0"
    ep = _epochs(16)
    y = ep.table["label"]
    with pytest.raises(ValueError, match=r"BraindecodeModel: field 'noncommercial': expected True to use "
                                         r"braindecode's BrainModule: its licence is cc-by-nc-4.0"):
        BraindecodeModel("BrainModule").fit(ep, y)
    small = {"hidden_dim": 16, "depth": 2}
    est = BraindecodeModel("BrainModule", model_kwargs=small, noncommercial=True, trainer={"max_epochs": 1}).fit(ep, y)
    assert est.predict_proba(ep).shape == (16, 2)


def test_evaluate_refuses_an_encoder_that_is_not_a_classifier(tmp_path, capsys):
    from neurodecode import save
    from neurodecode.cli.main import main

    save(_epochs(8), tmp_path / "e.h5")
    assert main(["evaluate", str(tmp_path / "e.h5"), "--encoder", "tiny_labram"]) == 2
    assert ("field '--encoder': expected a classifier (an estimator with fit/predict, such as braindecode, eegnet or "
            "mvcnet), got 'tiny_labram', which builds a LaBraM") in capsys.readouterr().err


def test_trainer_settings_are_refused_where_nothing_is_trained(tmp_path, capsys):
    from neurodecode import save
    from neurodecode.cli.main import main

    save(_epochs(8), tmp_path / "e.h5")
    assert main(["evaluate", str(tmp_path / "e.h5"), "trainer.max_epochs=2"]) == 2
    assert ("field 'trainer.max_epochs': Trainer settings apply to a trained classifier (--encoder), not to the "
            "feature recipe 'tangent_space'") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", str(tmp_path / "e.h5"), "--out", str(tmp_path / "f"), "trainer.lr=0.1"])
    assert "field 'trainer.lr': `neurodecode features` trains nothing" in capsys.readouterr().err
