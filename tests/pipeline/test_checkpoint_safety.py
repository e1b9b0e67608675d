"""Loading a checkpoint never runs code (no pickle, every class allowlisted) and never loses the old checkpoint:
replacement under kills and concurrent saves, parts that must be there, old pickled checkpoints only on request."""

import json
import pickle
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from neurodecode.alignment import RidgeAlignment, TargetSpace
from neurodecode.core.persistence import load_estimator, save_estimator
from neurodecode.encoders import VoxelFeatures, make_recipe
from neurodecode.loaders.simulate import simulated_subject
from neurodecode.pipeline import DecodingPipeline, input_contract


def small_pipeline(seed=0, alpha=1.0):
    """A fitted voxels → ridge → PCA pipeline without heads (seconds)."""
    ep = simulated_subject(n_train=40, n_test=5, n_voxels=30, image_size=12, seed=seed)
    ids = ep.table["stimulus"].tolist()
    target = TargetSpace("pca", n_components=6).fit(ep.stimuli, ids)
    enc = VoxelFeatures().fit(ep.data)
    ridge = RidgeAlignment(alphas=(alpha,)).fit(enc.transform(ep.data), target.transform(ep.stimuli, ids))
    target.index_gallery(ep.stimuli)
    return DecodingPipeline({"data": {}}, input_contract(ep), enc, target, ridge, stimuli=ep.stimuli), ep


def test_a_checkpoint_holds_no_pickle_and_loads_without_unpickling(tmp_path, monkeypatch):
    pipe, ep = small_pipeline()
    pipe.save(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").rglob("*") if p.is_file())
    assert not [f for f in files if f.endswith((".joblib", ".pkl", ".pickle", ".pt"))], files

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling while loading a checkpoint")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    again = DecodingPipeline.load(tmp_path / "ckpt")
    np.testing.assert_allclose(again.latents(ep), pipe.latents(ep), rtol=1e-6)


@pytest.mark.parametrize("recipe", ["tangent_space", "augmented_tangent_space", "filterbank_tangent_space", "covariance"])
def test_every_feature_recipe_round_trips_without_pickle(recipe, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20, 4, 200))
    kw = {"sfreq": 100.0, "bands": [[8, 12], [12, 30]]} if recipe == "filterbank_tangent_space" else {}
    pipe = make_recipe(recipe, **kw).fit(X)
    save_estimator(pipe, tmp_path, "enc")
    again = load_estimator(tmp_path, "enc")
    np.testing.assert_allclose(again.transform(X), pipe.transform(X), rtol=1e-10)
    assert type(again.steps[-1][1]) is type(pipe.steps[-1][1])


def test_a_mae_encoder_round_trips_without_pickle(tmp_path):
    import torch

    from neurodecode import Channels, build
    from neurodecode.encoders import EncoderFeatures

    torch.manual_seed(0)
    mae = build("encoder", "tiny_mae")
    pos = np.random.default_rng(1).normal(size=(3, 3)) * 0.05
    feats = EncoderFeatures(mae, Channels(["a", "b", "c"], "eeg", pos), 100.0, pool="channels").fit()
    X = np.random.default_rng(2).normal(size=(4, 3, 100)).astype(np.float32)
    save_estimator(feats, tmp_path, "enc")
    np.testing.assert_allclose(load_estimator(tmp_path, "enc").transform(X), feats.transform(X), rtol=1e-6)


@pytest.mark.parametrize(("file", "key", "target"), [
    ("heads/images/component.json", "build", "joblib.load"),
    ("heads/images/component.json", "build", "pandas.read_pickle"),
    ("encoder/component.json", "class", "os.system"),
    ("target/component.json", "class", "builtins.exec"),
    ("encoder/estimator.json", "__estimator__", "os.system"),
    ("aligner/estimator.json", "__estimator__", "subprocess.Popen"),
])
def test_a_checkpoint_naming_other_code_is_refused_before_import(tmp_path, file, key, target):
    from neurodecode.heads.sdf import SDFMeshHead

    pipe, _ = small_pipeline()
    pipe.heads["images"] = SDFMeshHead(embed_dim=6)         # any head: its build config is what gets tampered with
    pipe.head_configs["images"] = {"_target_": "neurodecode.heads.sdf.SDFMeshHead", "embed_dim": 6}
    pipe.save(tmp_path / "ckpt")
    path = tmp_path / "ckpt" / file
    meta = json.loads(path.read_text())
    if key == "build":
        meta["build"] = {"_target_": target, "filepath_or_buffer": "http://example.org/x.pkl"}
    elif key == "class":
        meta.update(layout="own", **{"class": target})
    else:
        meta["estimator"]["__estimator__"] = target
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"{file}.*expected a _target_ among neurodecode's configured classes .*"
                                         rf"got '{target}'; instantiating it could run arbitrary code"):
        DecodingPipeline.load(tmp_path / "ckpt")


def test_an_encoder_checkpoint_naming_other_code_is_refused(tmp_path):
    import torch

    from neurodecode import build
    from neurodecode.encoders import load_model, save_model

    torch.manual_seed(0)
    save_model(tmp_path / "m", build("tokenizer", "tiny_vq"))
    meta = json.loads((tmp_path / "m" / "checkpoint.json").read_text())
    meta["config"]["model"]["_target_"] = "builtins.eval"
    (tmp_path / "m" / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"field '_target_': expected a _target_ among .* got 'builtins.eval'"):
        load_model(tmp_path / "m")


def test_missing_parts_are_named(tmp_path):
    import shutil

    pipe, _ = small_pipeline()
    pipe.save(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "stimuli.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"ckpt/stimuli.parquet: missing, though .*model_index.json field "
                                                r"'stimuli' names it"):
        DecodingPipeline.load(tmp_path / "ckpt")
    pipe.save(tmp_path / "b")
    (tmp_path / "b" / "encoder" / "estimator.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"b/encoder/estimator.npz"):
        DecodingPipeline.load(tmp_path / "b")
    pipe.save(tmp_path / "c")
    shutil.rmtree(tmp_path / "c" / "aligner")
    with pytest.raises(FileNotFoundError, match=r"c/aligner: missing, though .*model_index.json field 'components' "
                                                r"lists 'aligner'"):
        DecodingPipeline.load(tmp_path / "c")
    pipe.save(tmp_path / "d")
    index = json.loads((tmp_path / "d" / "model_index.json").read_text())
    index["components"]["aligner"]["class"] = "neurodecode.alignment.aligners.LearnedAlignment"
    (tmp_path / "d" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match=r"d/aligner/component.json: the component is a RidgeAlignment, but .*"
                                         r"'components.aligner.class' says 'neurodecode.alignment.aligners."
                                         r"LearnedAlignment'"):
        DecodingPipeline.load(tmp_path / "d")


def test_a_checkpoint_names_its_components_and_writes_the_stimulus_table_as_a_table(tmp_path):
    import pandas as pd

    pipe, ep = small_pipeline()
    pipe.save(tmp_path / "ckpt")
    index = json.loads((tmp_path / "ckpt" / "model_index.json").read_text())
    assert index["format"] == 3
    assert index["components"] == {
        "encoder": {"class": "neurodecode.encoders.voxels.VoxelFeatures", "optional": False},
        "aligner": {"class": "neurodecode.alignment.aligners.RidgeAlignment", "optional": False},
        "target": {"class": "neurodecode.alignment.targets.TargetSpace", "optional": False}}
    assert index["contract"]["ch_names"] == list(ep.channels.names)
    table = pd.read_parquet(tmp_path / "ckpt" / "stimuli.parquet")
    assert table["stimulus"].tolist() == ep.stimuli["stimulus"].tolist()
    np.testing.assert_array_equal(np.stack(table["pixels"]), np.stack(ep.stimuli["pixels"]))
    again = DecodingPipeline.load(tmp_path / "ckpt")
    assert again.target.gallery_ids_ == [str(s) for s in ep.stimuli["stimulus"]]
    np.testing.assert_allclose(again.gallery, pipe.gallery)


def test_a_checkpoint_of_the_0_2_format_still_loads_and_decodes_the_same(tmp_path):
    """A format-2 checkpoint written by neurodecode 0.2 (tests/data/checkpoint_format2: voxels → LearnedAlignment →
    PCA, a trained tiny unCLIP head, the ridge baseline, the stimulus table in an epoch store) loads, and gives the
    latents, baseline latents and images that 0.2 gave (tests/data/checkpoint_format2_reference.npz); saved again
    it is a format-3 checkpoint that gives them too."""
    from pathlib import Path

    from neurodecode import load

    data = Path(__file__).resolve().parents[1] / "data"
    ref = np.load(data / "checkpoint_format2_reference.npz")
    held = load(data / "checkpoint_format2_heldout.h5")
    for folder in (data / "checkpoint_format2", tmp_path / "resaved"):
        pipe = DecodingPipeline.load(folder)
        np.testing.assert_allclose(pipe.latents(held), ref["latents"], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pipe.baseline_latents(held), ref["baseline"], rtol=1e-5, atol=1e-6)
        out = pipe.heads["images"].generate(ref["latents"], seed=0, num_inference_steps=3, n_samples=1)
        np.testing.assert_allclose(out.images, ref["images"], atol=1e-5)
        assert pipe.trained_heads == ["images"] and pipe.baseline.name.startswith("baseline")
        assert pipe.target.gallery_ids_ == pipe.stimuli["stimulus"].astype(str).tolist()
        if folder.name == "checkpoint_format2":
            pipe.save(tmp_path / "resaved")
    assert json.loads((tmp_path / "resaved" / "model_index.json").read_text())["format"] == 3


def test_a_format_1_checkpoint_loads_only_when_pickles_are_trusted(tmp_path):
    import joblib

    pipe, ep = small_pipeline()
    pipe.save(tmp_path / "ckpt")
    folder = tmp_path / "ckpt"
    index = json.loads((folder / "model_index.json").read_text())
    (folder / "model_index.json").unlink()
    with np.load(folder / "target" / "target.npz") as npz:
        np.savez(folder / "target.npz", **{f"target_{k}": npz[k] for k in npz.files if k != "gallery"})
    state = json.loads((folder / "target" / "target.json").read_text())
    joblib.dump(pipe.encoder, folder / "encoder.joblib")
    joblib.dump(pipe.aligner, folder / "aligner.joblib")
    meta = {"format": 1, "config": index["config"], "contract": index["contract"], "target": state,
            "aligner": "joblib", "low_level": False, "stimuli": False, "gallery": False, "head_configs": {},
            "trained_heads": []}
    (folder / "pipeline.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=r"this is a format-1 checkpoint whose encoder/aligner are pickles .* pass "
                                         r"trust_pickle=True"):
        DecodingPipeline.load(folder)
    with pytest.warns(UserWarning, match="loading pickled parts"):
        again = DecodingPipeline.load(folder, trust_pickle=True)
    np.testing.assert_allclose(again.latents(ep), pipe.latents(ep), rtol=1e-6)


SAVER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[3])
    from test_checkpoint_safety import small_pipeline
    pipe, _ = small_pipeline(alpha=float(sys.argv[2]))
    print("ready", flush=True)
    try:
        pipe.save(sys.argv[1], overwrite=True)
        print("saved", flush=True)
    except FileExistsError as err:
        print("refused:", err, flush=True)
""")


def _saver(path, alpha):
    import os

    return subprocess.Popen([sys.executable, "-c", SAVER, str(path), str(alpha), os.path.dirname(__file__)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _alpha(path):
    return float(DecodingPipeline.load(path).aligner.alpha_[0])


@pytest.mark.slow
def test_concurrent_saves_to_one_path_leave_one_complete_checkpoint(tmp_path):
    path = tmp_path / "ckpt"
    procs = [_saver(path, a) for a in (1.0, 100.0)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert sum("saved" in o[0] for o in outs) >= 1
    assert _alpha(path) in (1.0, 100.0)                        # one whole checkpoint, not a mix of the two
    assert not list(tmp_path.glob(".ckpt.*"))                 # no temporary or old folder left


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_a_save_killed_at_any_moment_never_leaves_no_checkpoint(tmp_path, attempt):
    path = tmp_path / "ckpt"
    small_pipeline(alpha=1.0)[0].save(path)
    proc = _saver(path, 100.0)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(random.Random(attempt).uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if (path / "model_index.json").is_file():
        assert _alpha(path) in (1.0, 100.0)                    # the old checkpoint, or the new one complete
    else:                          # killed between the two renames: the old one is loaded, and put back by a save
        (old,) = tmp_path.glob(".ckpt.old-*")
        assert _alpha(old) == 1.0
        assert _alpha(path) == 1.0
        small_pipeline(alpha=5.0)[0].save(path, overwrite=True)
        assert _alpha(path) == 5.0 and not list(tmp_path.glob(".ckpt.old-*"))


def test_a_checkpoint_left_aside_by_a_killed_replacement_loads_and_is_put_back(tmp_path, caplog):
    """The state a kill between publish_dir's two renames leaves: no checkpoint under its name, the complete old one
    under a hidden name. It loads (with a warning naming it), and the next save restores it before anything else —
    so a save without overwrite still refuses to replace it."""
    path = tmp_path / "ckpt"
    small_pipeline(alpha=1.0)[0].save(path)
    path.rename(tmp_path / ".ckpt.old-0badc0de")
    with caplog.at_level("WARNING", logger="neurodecode"):
        assert _alpha(path) == 1.0
    assert "a replacement of this checkpoint was interrupted" in caplog.text and ".ckpt.old-0badc0de" in caplog.text
    assert not path.exists()                                   # loading wrote nothing
    with pytest.raises(FileExistsError, match="already there"):
        small_pipeline(alpha=2.0)[0].save(path)
    assert _alpha(path) == 1.0 and not list(tmp_path.glob(".ckpt.old-*"))
