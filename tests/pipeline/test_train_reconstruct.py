"""The front door: Hydra training runs, the pipeline checkpoint, `neurodecode reconstruct` and its report, the demo,
the dataset manifests and `neurodecode data`."""

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_epochs

from neurodecode import EpochSet
from neurodecode.cli import main
from neurodecode.core.configs import CONF_DIR
from neurodecode.alignment import TargetSpace
from neurodecode.encoders import VoxelFeatures
from neurodecode.pipeline import DecodingPipeline, check_contract, input_contract
from neurodecode.loaders.simulate import simulated_subject
from neurodecode.core.storage import load, save
from neurodecode.core.configs import compose

GROUPS = ["data", "preprocessing", "encoder", "objective", "aligner", "head", "trainer", "experiment"]
MANDATORY = {("data", "digits69"): ["data.path=x.mat"], ("data", "store"): ["data.path=x.h5"],
             ("data", "meeg"): ["data.path=x.edf", "data.stimuli=s.csv"]}


def _options(group):
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """`neurodecode train experiment=tiny` into a folder (the CLI, end to end)."""
    out = tmp_path_factory.mktemp("run") / "tiny"
    assert main(["train", "experiment=tiny", f"hydra.run.dir={out}"]) == 0
    return out


@pytest.fixture(scope="module")
def other_heads_run(tmp_path_factory):
    """experiment=tiny with the other tiny image and caption heads and a 3D head in the third slot."""
    out = tmp_path_factory.mktemp("run") / "tiny_other"
    assert main(["train", "experiment=tiny", "head@heads.images=tiny_ip_adapter", "head@heads.meshes=tiny_shap_e",
                 "head@heads.captions=tiny_git_caption", "~heads.captions.n_embd", f"hydra.run.dir={out}"]) == 0
    return out


def _head_class(name):
    """The head class a conf/head option builds (its kind and name are class attributes)."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    target = OmegaConf.load(CONF_DIR / "head" / f"{name}.yaml")._target_
    try:
        return get_class(target)                        # the class itself
    except ValueError:
        return get_class(target.rsplit(".", 1)[0])      # a constructor classmethod (tiny, from_pretrained)


#: options that need pretrained weights from the hub: composed here; instantiated only where the weights exist
NEEDS_WEIGHTS = {"unclip_sd21_small": "objective=clip_vit_l14", "ip_adapter_sd15": "objective=clip_vit_l14",
                 "gpt2_prefix_caption": "objective=clip_vit_l14", "shap_e_img2img": "objective=clip_vit_l14",
                 "nearest_caption": "heads.captions.captions_file=bank.txt", "git_base_coco": "objective=clip_vit_l14"}


@pytest.mark.slow
@pytest.mark.parametrize("name", _options("head"))
def test_every_head_config_composes_with_train_and_reconstruct(name, tiny_run, other_heads_run, tmp_path):
    from neurodecode.pipeline import DecodingPipeline
    from neurodecode.pipeline.decoding import reconstruct

    cls = _head_class(name)
    kind = cls.kind
    extra = [NEEDS_WEIGHTS[name]] if name in NEEDS_WEIGHTS else []
    cfg = compose(["experiment=tiny", f"head@heads.{kind}={name}", *extra])
    assert (cfg.heads[kind]._target_ + ".").startswith(f"{cls.__module__}.{cls.__name__}.")
    if name in NEEDS_WEIGHTS:
        return                          # built from real weights: tests/heads/test_heads.py names what is missing
    run = other_heads_run if name in ("tiny_ip_adapter", "tiny_shap_e", "tiny_git_caption") else tiny_run
    if name == "sdf_mesh":                  # trained on procedural objects in a run of its own
        run = tmp_path / "sdf"
        assert main(["train", "experiment=tiny", "head@heads.images=null", "head@heads.captions=null",
                     "head@heads.meshes=sdf_mesh", "meshes.fit.max_epochs=1", "meshes.fit.procedural=12",
                     f"hydra.run.dir={run}"]) == 0
    pipe = DecodingPipeline.load(run / "checkpoint", heads=[kind])
    assert type(pipe.heads[kind]) is cls and pipe.heads[kind].latent.dim == pipe.target.dim
    res = reconstruct(run / "checkpoint", [run / "heldout_epochs.h5"], tmp_path / "r", heads=[kind], progress=False)
    meta = json.loads((tmp_path / "r" / kind / "metadata.json").read_text())
    assert meta["head"] == pipe.heads[kind].name and len(meta["trials"]) == res["n_trials"]
    column = {"images": "generated", "captions": "caption", "meshes": "mesh views"}[kind]
    assert f"<th>{column}</th>" in Path(res["report"]).read_text()


# -- composing and instantiating every config group -----------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_every_option_of_every_group_composes_and_instantiates(group, tmp_path):
    from hydra.utils import instantiate

    from neurodecode.core.training import Trainer

    store = tmp_path / "s.h5"
    save(simulated_subject(n_train=20, n_test=5, n_voxels=10, image_size=12), store)
    for option in _options(group):
        key = "head@heads.images" if group == "head" else group
        cfg = compose([f"{key}={option}", *MANDATORY.get((group, option), [])])
        node = cfg.heads.images if group == "head" else None if group == "experiment" else cfg[group]
        if group == "experiment":
            assert cfg.name == option
        elif group == "preprocessing":                # every step is a known one with known keys
            from omegaconf import OmegaConf

            from neurodecode.loaders.preprocessing import check_steps

            steps = OmegaConf.to_container(node.steps, resolve=True)
            assert check_steps(steps) == steps and (option == "none") == (steps == [])
        elif group == "objective":
            space = TargetSpace(**{k: v for k, v in node.items()})
            assert space.kind in ("pca", "pixels", "clip", "labels")
        elif group == "trainer":
            assert Trainer(**node).max_epochs >= 1
        elif group == "data":
            if option == "digits_sim":
                assert isinstance(instantiate(node), EpochSet)
            elif option == "store":
                node.path = str(store)
                assert instantiate(node).n_epochs == 25
            else:  # needs a recording: the target must import, the mandatory path is named
                from hydra.utils import get_method

                assert callable(get_method(node._target_))
        elif group == "head":
            if not node._target_.endswith(("from_pretrained", "from_files")):    # built here (tiny, trainable)
                extra = {"captions": ["a b", "c d"]} if option in ("tiny_prefix_caption", "tiny_git_caption") else {}
                assert instantiate(node, **extra) is not None
            else:  # real weights: offline they fail with an error naming them (tests/test_heads.py)
                assert node._target_.endswith("from_pretrained") or node._target_.endswith("from_files")
        elif group == "encoder":
            if node._target_.endswith("from_published"):    # a released checkpoint file (test_encoders builds one)
                from omegaconf import OmegaConf

                assert OmegaConf.is_missing(node, "checkpoint")
            else:
                assert instantiate(node) is not None
        else:
            assert hasattr(instantiate(node), "fit")


@pytest.mark.parametrize("override", ["head@heads.images=null", "~head@heads.images"])
def test_an_empty_head_slot_removes_the_experiments_keys_too(override):
    from neurodecode.core.configs import normalize_overrides

    assert normalize_overrides([override]) == ["~head@heads.images", "++heads.images=null"]
    assert normalize_overrides(["data.path=null", "~aligner.seed", "aligner=mlp"]) == \
        ["data.path=null", "~aligner.seed", "aligner=mlp"]               # values, not groups: Hydra's meaning
    cfg = compose(["experiment=tiny", override])
    assert cfg.heads.images is None and cfg.heads.captions._target_.endswith("PrefixCaptionHead.tiny")


def test_a_head_slot_with_keys_but_no_head_is_named(tmp_path, capsys):
    assert main(["train", "experiment=tiny", "head@heads.images=null", "+heads.meshes.grid_size=8",
                 f"hydra.run.dir={tmp_path / 'r'}"]) == 2
    assert ("config 'heads.meshes': expected a head (a '_target_': choose one with head@heads.meshes=NAME, or empty "
            "the slot with head@heads.meshes=null), got only the keys ['grid_size']") in capsys.readouterr().err


def test_a_key_the_chosen_option_does_not_take_is_named_with_the_ones_it_takes(tmp_path, capsys):
    assert main(["train", "experiment=tiny", "head@heads.images=tiny_ip_adapter", "+heads.images.bogus=1",
                 f"hydra.run.dir={tmp_path / 'r'}"]) == 2
    err = capsys.readouterr().err
    assert ("config 'heads.images': field 'bogus': neurodecode.heads.images.IPAdapterImageHead.tiny does not take it "
            "(it takes ['embed_dim', 'image_size',") in err and "remove it with ~heads.images.bogus" in err


def test_unknown_key_gets_hydras_message_and_a_hint(capsys):
    assert main(["train", "experiment=tiny", "aligner.no_such_key=1"]) == 2
    err = capsys.readouterr().err
    assert "Could not override 'aligner.no_such_key'" in err and "+aligner.no_such_key" in err and "Hint:" in err
    assert main(["train", "aligner=no_such_aligner"]) == 2
    err = capsys.readouterr().err
    assert "no_such_aligner" in err and "Hint:" in err


@pytest.mark.parametrize("module", ["neurodecode.cli.train", "neurodecode.train"])   # the old path: a shim
def test_python_m_train_shows_the_resolved_config(module):
    out = subprocess.run([sys.executable, "-m", module, "experiment=tiny", "aligner=mlp", "--cfg", "job"],
                         capture_output=True, text=True, check=True).stdout
    assert "neurodecode.alignment.aligners.LearnedAlignment" in out and "name: tiny" in out


def test_a_wrong_encoder_kind_is_refused(tmp_path):
    from neurodecode.pipeline.fitting import run

    from omegaconf import OmegaConf, open_dict

    cfg = compose(["experiment=tiny"])
    with open_dict(cfg):                                   # a user config naming a model that is no encoder
        cfg.encoder = OmegaConf.create({"_target_": "neurodecode.encoders.models.mae.VQTokenizer", "patch_len": 25})
    with pytest.raises(TypeError, match="builds a VQTokenizer; a training run takes a scikit-learn transformer"):
        run(cfg, tmp_path)


# -- train → checkpoint → reconstruct → report ------------------------------------------------------------------
def test_train_writes_config_metrics_checkpoint_and_heldout(tiny_run):
    assert (tiny_run / ".hydra" / "config.yaml").is_file() and (tiny_run / "config.yaml").is_file()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["n_train"] == 120 and metrics["n_heldout"] == 12
    two_way = [r["value"] for r in metrics["scores"] if r["metric"] == "two_way"][0]
    assert two_way > 0.6                                   # chance 0.5
    held = load(tiny_run / "heldout_epochs.h5")
    assert held.n_epochs == 12 and set(held.table["split"]) == {"test"}
    pipe = DecodingPipeline.load(tiny_run / "checkpoint")
    assert sorted(pipe.heads) == ["captions", "images"] and pipe.trained_heads == ["images", "captions"]
    assert pipe.contract.n_times == 1 and len(pipe.contract.ch_names) == 60
    assert pipe.config["name"] == "tiny" and pipe.gallery.shape == (132, 8)


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory):
    """experiment=tiny with the learned mapper: the run fits ridge on voxels beside it (the plain baseline)."""
    out = tmp_path_factory.mktemp("run") / "tiny_mlp"
    assert main(["train", "experiment=tiny", "aligner=mlp", "aligner.trainer.max_epochs=15", "head@heads.captions=null",
                 f"hydra.run.dir={out}"]) == 0
    return out


@pytest.mark.slow
def test_every_run_reports_the_plain_baseline_beside_it(mlp_run, tiny_run, tmp_path, capfd):
    from neurodecode.core.scores import trial_scores
    from neurodecode.pipeline.decoding import reconstruct

    metrics = json.loads((mlp_run / "metrics.json").read_text())
    base = metrics["baseline"]
    rows = {r["metric"]: r for r in base["comparison"]}
    assert set(rows) == {"two_way", "top1", "pixcorr"} and rows["two_way"]["n_items"] == 12
    mine = {r["metric"]: r["value"] for r in metrics["scores"] if r["pipeline"] == "tiny"}
    theirs = {r["metric"]: r["value"] for r in base["scores"]}
    assert rows["two_way"]["value"] == pytest.approx(mine["two_way"]) and \
        rows["two_way"]["baseline"] == pytest.approx(theirs["two_way"])
    assert rows["two_way"]["ci_low"] <= rows["two_way"]["difference"] <= rows["two_way"]["ci_high"]
    assert 0 < rows["two_way"]["p_value"] <= 1 and isinstance(base["beats_baseline"], bool)
    # the checkpoint carries the baseline: its latents give the same held-out scores after loading
    pipe = DecodingPipeline.load(mlp_run / "checkpoint")
    held = load(mlp_run / "heldout_epochs.h5")
    true = pipe.target.transform(pipe.stimuli, held.table["stimulus"].astype(str).tolist())
    again = trial_scores(pipe.baseline_latents(held), true)
    assert again["two_way"].mean() == pytest.approx(rows["two_way"]["baseline"], abs=1e-6)
    res = reconstruct(mlp_run / "checkpoint", [mlp_run / "heldout_epochs.h5"], tmp_path / "rec", progress=False)
    compared = {(r["pipeline"], r["metric"]) for r in res["baseline"]}
    assert {("pipeline", "two_way"), ("generated", "pixcorr"), ("generated", "ssim")} <= compared
    page = Path(res["report"]).read_text()
    assert "Beside the plain baseline" in page and "<th>score: baseline two_way</th>" in page
    per_trial = (tmp_path / "rec" / "trial_scores.csv").read_text().splitlines()
    assert len(per_trial) == 13 and "baseline two_way" in per_trial[0]
    # ridge on voxels is its own baseline: said so, not compared with itself
    assert json.loads((tiny_run / "metrics.json").read_text())["baseline"]["same_as_pipeline"] is True
    out = tmp_path / "nobase"
    assert main(["train", "experiment=tiny", "aligner=mlp", "aligner.trainer.max_epochs=1", "baseline=false",
                 "head@heads.images=null", "head@heads.captions=null", f"hydra.run.dir={out}"]) == 0
    assert "skipped" in json.loads((out / "metrics.json").read_text())["baseline"]
    assert "no plain baseline was fitted" in capfd.readouterr().err
    assert not (out / "checkpoint" / "baseline_aligner").exists()


def test_checkpoint_round_trip_gives_the_same_latents_and_heads(tiny_run, tmp_path):
    import torch

    pipe = DecodingPipeline.load(tiny_run / "checkpoint")
    held = load(tiny_run / "heldout_epochs.h5")
    pipe.save(tmp_path / "copy")
    with pytest.raises(FileExistsError, match="a checkpoint is already there"):
        pipe.save(tmp_path / "copy")
    again = DecodingPipeline.load(tmp_path / "copy")
    np.testing.assert_allclose(again.latents(held), pipe.latents(held), rtol=1e-6)
    for kind in ("images", "captions"):
        a, b = pipe.heads[kind].state_dict(), again.heads[kind].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert again.heads["captions"].generate(pipe.latents(held)).captions == \
        pipe.heads["captions"].generate(pipe.latents(held)).captions


def test_reconstruct_cli_writes_every_trial_and_the_report(tiny_run, tmp_path, capsys):
    out = tmp_path / "rec"
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tiny_run / "heldout_epochs.h5"), "--out", str(out),
                 "--no-progress"]) == 0
    assert "12 trial(s) decoded" in capsys.readouterr().out
    page = (out / "report.html").read_text()
    assert all(f"id='trial-{i}'" in page for i in range(12))
    assert page.count("data:image/png;base64,") >= 12 * 4      # stimulus, linear, generated, retrieved...
    assert "SIMULATED" in page and "Evaluation" in page
    for folder, n_files in (("images", 12 * 2), ("linear", 12), ("captions", 12)):
        meta = json.loads((out / folder / "metadata.json").read_text())
        assert len(meta["trials"]) == 12 and sum(len(t["files"]) for t in meta["trials"]) == n_files
    scores = json.loads((out / "scores.json").read_text())
    metrics = {(r["pipeline"], r["metric"]) for r in scores}
    assert {("latents", "two_way"), ("generated", "pixcorr"), ("captions", "exact_match"),
            ("gallery of 132", "gallery_top1")} <= metrics
    assert np.load(out / "latents.npy").shape == (12, 8)
    retrieval = json.loads((out / "retrieval.json").read_text())
    assert len(retrieval) == 12 and all(len(r["top5"]) == 5 for r in retrieval)
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tiny_run / "heldout_epochs.h5"), "--out", str(out),
                 "--no-progress"]) == 2                                   # nothing is overwritten silently
    assert "a reconstruction is already there (report.html)" in capsys.readouterr().err
    # a second reconstruction into the folder while one writes it is refused at once, nothing written
    from neurodecode.core.files import WriteLock

    with WriteLock(out):
        assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tiny_run / "heldout_epochs.h5"), "--out",
                     str(out), "--no-progress", "--overwrite", "--heads", "retrieval"]) == 2
    assert "being written by another process" in capsys.readouterr().err
    # a killed run's half-written staging folder is cleared; --overwrite replaces every output of the earlier run
    killed = tmp_path / ".rec.killed.staging"
    killed.mkdir()
    (killed / "report.html").write_text("half")
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tiny_run / "heldout_epochs.h5"), "--out", str(out),
                 "--no-progress", "--overwrite", "--heads", "retrieval"]) == 0
    assert not killed.exists() and not (out / "images").exists() and not (out / "captions").exists()
    assert (out / "report.html").is_file() and (out / "retrieval.json").is_file()


def test_reconstruct_selects_heads_and_trials(tiny_run, tmp_path):
    from neurodecode.pipeline.decoding import reconstruct

    res = reconstruct(tiny_run / "checkpoint", [tiny_run / "heldout_epochs.h5"], tmp_path / "r", heads=["captions"],
                      query="label == '1' or label == '7'", progress=False)
    assert not (tmp_path / "r" / "images").exists() and (tmp_path / "r" / "captions").is_dir()
    held = load(tiny_run / "heldout_epochs.h5")
    assert res["n_trials"] == int(held.table["label"].isin(["1", "7"]).sum())
    with pytest.raises(ValueError, match=r"field 'heads': expected names among"):
        reconstruct(tiny_run / "checkpoint", [tiny_run / "heldout_epochs.h5"], tmp_path / "x", heads=["audio"])


def test_reconstruct_errors_name_what_is_wrong(tiny_run, tmp_path, capsys):
    assert main(["reconstruct", str(tmp_path / "nope"), str(tiny_run / "heldout_epochs.h5"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "model_index.json: no decoding-pipeline checkpoint here" in capsys.readouterr().err
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tmp_path / "missing.h5"), "--out",
                 str(tmp_path / "o")]) == 2
    assert "missing.h5: no such recording" in capsys.readouterr().err
    # other recordings: a different subject with other voxels, and the wrong rate
    other = simulated_subject(n_train=5, n_test=5, n_voxels=70, image_size=12, tr=2.0)
    save(other, tmp_path / "other.h5")
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tmp_path / "other.h5"), "--out",
                 str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "other.h5: the recordings do not match the input contract" in err
    assert "10 not known to the model" in err and "sfreq: expected 0.625 Hz, got 0.5 Hz" in err
    # the demo's data recipe reads no files
    assert main(["reconstruct", str(tiny_run / "checkpoint"), str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "reads no files" in capsys.readouterr().err


def test_check_contract_reorders_by_name_and_lists_every_mismatch():
    ep = make_epochs(n_epochs=4, n_channels=3, n_times=5)
    contract = input_contract(ep)
    shuffled = ep.pick_channels(list(reversed(ep.channels.names)))
    assert list(check_contract(contract, shuffled, "x").channels.names) == list(ep.channels.names)
    wrong = make_epochs(n_epochs=4, n_channels=3, n_times=6, sfreq=100.0, subject="sub-02")
    with pytest.raises(ValueError) as err:
        check_contract(contract, wrong, "rec.h5", "ckpt")
    msg = str(err.value)
    assert msg.startswith("rec.h5: the recordings do not match the input contract of ckpt")
    assert "3 of the 3 the model was trained on are missing" in msg and "n_times: expected 5" in msg
    assert "sfreq: expected 128 Hz, got 100 Hz" in msg


# -- pieces ------------------------------------------------------------------------------------------------------
def test_simulated_subject_is_seeded_labelled_and_says_so():
    a, b = simulated_subject(n_train=30, n_test=6, n_voxels=20, seed=3), simulated_subject(n_train=30, n_test=6,
                                                                                          n_voxels=20, seed=3)
    np.testing.assert_array_equal(a.data, b.data)
    assert a.shape == (36, 20, 1) and list(a.table["split"]).count("test") == 6
    assert a.provenance[0]["note"].startswith("SIMULATED")
    assert a.stimuli["caption"].str.match(r"a handwritten (zero|one|two|three|four|five|six|seven|eight|nine)").all()
    assert not np.array_equal(simulated_subject(n_train=30, n_test=6, n_voxels=20, seed=4).data, a.data)
    with pytest.raises(ValueError, match=r"field 'n_train \+ n_test': expected 1..1797"):
        simulated_subject(n_train=2000)


def test_voxel_features_and_target_space():
    ep = simulated_subject(n_train=80, n_test=10, n_voxels=30, image_size=12)
    f = VoxelFeatures().fit(ep.data)
    z = f.transform(ep.data)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    with pytest.raises(ValueError, match="expected 30 features per epoch, got 29"):
        f.transform(ep.data[:, :29])
    ids = ep.table["stimulus"].tolist()
    space = TargetSpace("pca", n_components=20).fit(ep.stimuli, ids)
    Y = space.transform(ep.stimuli, ids)
    assert Y.shape == (90, 20) and space.dim == 20
    back = space.decode(Y)
    truth = np.stack(ep.stimuli.set_index("stimulus").loc[ids, "pixels"]).reshape(90, 12, 12, 1)
    assert np.corrcoef(back.ravel(), truth.ravel())[0, 1] > 0.9
    with pytest.raises(ValueError, match="field 'objective.n_components': expected at most 90"):
        TargetSpace("pca", n_components=200).fit(ep.stimuli, ids)
    with pytest.raises(ValueError, match="field 'objective.kind': expected 'pca', 'pixels', 'clip' or 'labels'"):
        TargetSpace("vae")


def test_report_embeds_images_captions_and_mesh_views(tmp_path):
    from neurodecode.evaluation.report import write_report

    img = np.linspace(0, 1, 64).reshape(8, 8)
    trials = [{"trial": i, "subject": "s", "stimulus": f"x{i}", "stimulus image": img, "caption": f"<cap {i}>",
               "mesh views": [img, img]} for i in range(3)]
    path = write_report(tmp_path / "r.html", title="T", trials=trials,
                        columns=["stimulus image", "caption", "mesh views"], notices=["simulated"])
    page = path.read_text()
    assert page.count("data:image/png;base64,") == 9 and "&lt;cap 2&gt;" in page
    assert all(f"id='trial-{i}'" in page for i in range(3)) and "class='notice'>simulated" in page


@pytest.mark.slow
def test_demo_beats_chance_and_says_simulated(tmp_path, caplog):
    from neurodecode.cli.demo import run_demo

    caplog.set_level("INFO", logger="neurodecode")
    res = run_demo(tmp_path / "demo", ["data.n_train=200", "data.n_test=20", "data.n_voxels=120", "aligner.cv=2",
                                       "aligner.candidates.mlp.trainer.max_epochs=3",
                                       "images.fit.max_epochs=1", "captions.fit.max_epochs=10", "images.steps=4"],
                   progress=False)
    text = caplog.text                                    # the summary goes through the neurodecode logger
    assert "SIMULATED subject" in text and "report:" in text
    rows = {(r["pipeline"], r["metric"]): r for r in res["scores"]}
    assert rows[("latents", "two_way")]["value"] > 0.7            # chance 0.5
    assert rows[("latents", "image_top5")]["value"] > 2 * rows[("latents", "image_top5")]["chance"]
    # chance = PixCorr against the other trials' stimuli: the digits share most of their pixels (0.73 here)
    assert rows[("linear", "pixcorr")]["value"] > rows[("linear", "pixcorr")]["chance"] + 0.05
    assert "This subject is SIMULATED" in Path(res["report"]).read_text()
    with pytest.raises(FileExistsError, match="a training run is already there"):
        run_demo(tmp_path / "demo")


def test_multirun_writes_one_folder_per_job(tmp_path):
    sweep = tmp_path / "sweep"
    assert main(["train", "--multirun", "experiment=tiny", "seed=0,1", "images.fit.max_epochs=0",
                 "captions.fit.max_epochs=0", f"hydra.sweep.dir={sweep}"]) == 0
    runs = sorted(p.parent for p in sweep.glob("*/metrics.json"))
    assert len(runs) == 2
    seeds = {json.loads((r / "checkpoint" / "model_index.json").read_text())["config"]["seed"] for r in runs}
    assert seeds == {0, 1}


# -- dataset manifests and `neurodecode data` --------------------------------------------------------------------
REQUIRED = ("name", "title", "modality", "license", "homepage", "citation", "n_subjects", "sfreq", "events",
            "loader", "files")


def test_every_manifest_is_complete(capsys):
    from neurodecode.loaders.manifests import list_manifests

    names = [m["name"] for m in list_manifests()]
    assert {"nsd", "things_eeg2", "things_meg", "bnci2014_001", "eegmmidb", "haxby2001", "fmri_shape",
            "seeg_speech"} <= set(names)
    for m in list_manifests():
        if m["name"] == "eegmmidb":
            continue  # the example's manifest (pinned checksums) predates the full schema
        missing = [k for k in REQUIRED if k not in m]
        assert not missing, (m["name"], missing)
        assert m.get("download", "direct") in ("direct", "manual")
        assert m.get("base_url") or m.get("instructions")
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in names)
    assert main(["data", "info", "haxby2001"]) == 0
    assert "checked against the data set's MD5SUMS" in capsys.readouterr().out
    assert main(["data", "info", "no_such_set"]) == 2
    assert "no manifest named 'no_such_set'" in capsys.readouterr().err


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local mirror (file://) and a manifest folder with three kinds of checksum."""
    import neurodecode.loaders.manifests as manifests

    src = tmp_path / "mirror"
    (src / "sub-01").mkdir(parents=True)
    (src / "sub-01" / "a.bin").write_bytes(b"alpha" * 100)
    (src / "b.bin").write_bytes(b"beta")
    (src / "c.bin").write_bytes(b"gamma")
    (src / "MD5SUMS").write_text(f"{hashlib.md5(b'gamma').hexdigest()}  c.bin\n")
    mdir = tmp_path / "manifests"
    mdir.mkdir()
    base = dict(title="t", modality="eeg", license="CC0", base_url=src.as_uri() + "/")
    (mdir / "local.yaml").write_text(json.dumps({**base, "name": "local", "files": {
        "sub-01/a.bin": hashlib.sha256(b"alpha" * 100).hexdigest(), "b.bin": None}}))
    (mdir / "md5.yaml").write_text(json.dumps({**base, "name": "md5", "checksums": {"file": "MD5SUMS",
                                                                                     "algorithm": "md5"},
                                               "files": {"c.bin": None}}))
    (mdir / "wrong.yaml").write_text(json.dumps({**base, "name": "wrong", "files": {"b.bin": "0" * 64}}))
    (mdir / "manual.yaml").write_text(json.dumps({"name": "manual", "title": "t", "modality": "seeg",
                                                  "license": "CC0", "download": "manual",
                                                  "instructions": "Get it from OSF.", "files": {"x.bin": None}}))
    monkeypatch.setattr(manifests, "MANIFEST_DIR", mdir)
    monkeypatch.setenv("NEURODECODE_CACHE", str(tmp_path / "cache"))
    return src


def test_fetch_verifies_pinned_upstream_and_first_use_checksums(mirror, tmp_path, capsys):
    from neurodecode.loaders.manifests import fetch_dataset

    paths = fetch_dataset("local")
    assert [p.read_bytes()[:5] for p in paths] == [b"alpha", b"beta"]
    assert "recorded in" in capsys.readouterr().err                # b.bin: trust on first use (logged)
    sums = (tmp_path / "cache" / "local" / "SHA256SUMS").read_text()
    assert f"{hashlib.sha256(b'beta').hexdigest()}  b.bin" in sums and "a.bin" not in sums
    assert fetch_dataset("local", ["b.*"]) == [paths[1]]            # already there: verified, not recorded again
    assert "recorded in" not in capsys.readouterr().out
    paths[1].write_bytes(b"tampered")                                 # a damaged local copy is fetched again
    assert fetch_dataset("local", ["b.bin"])[0].read_bytes() == b"beta"
    (mirror / "b.bin").write_bytes(b"beta, version 2")                # upstream changed since the first download
    paths[1].unlink()
    with pytest.raises(ValueError, match=r"b.bin: checksum mismatch"):
        fetch_dataset("local", ["b.bin"])
    assert fetch_dataset("md5")[0].read_bytes() == b"gamma"           # checked against the set's own MD5SUMS
    (mirror / "c.bin").write_bytes(b"changed upstream")
    (tmp_path / "cache" / "md5" / "c.bin").unlink()
    with pytest.raises(ValueError, match="c.bin: checksum mismatch"):
        fetch_dataset("md5")
    with pytest.raises(ValueError, match="checksum mismatch"):
        fetch_dataset("wrong")
    with pytest.raises(ValueError, match=r"no file matches \['zzz\*'\]"):
        fetch_dataset("local", ["zzz*"])


def test_fetch_offline_and_manual_sets_fail_clearly(mirror, tmp_path, monkeypatch, capsys):
    import neurodecode.loaders.manifests as manifests
    from neurodecode.loaders.manifests import fetch_dataset

    with pytest.raises(FileNotFoundError, match=r"x.bin: missing\. manual is not downloadable file by file; Get it "
                                                r"from OSF\."):
        fetch_dataset("manual")
    (tmp_path / "cache" / "manual" / "x.bin").write_bytes(b"x")
    assert fetch_dataset("manual")[0].read_bytes() == b"x"         # placed by hand: recorded, then verified
    offline = Path(manifests.MANIFEST_DIR) / "offline.yaml"
    offline.write_text(json.dumps({"name": "offline", "title": "t", "modality": "eeg", "license": "CC0",
                                   "base_url": "http://127.0.0.1:9/", "files": {"f.edf": None}}))
    assert main(["data", "fetch", "offline"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"could not download http://127.0.0.1:9/f.edf for data set 'offline' .* Offline\?", err)
    assert main(["data", "fetch", "local", "--dest", str(tmp_path / "d")]) == 0
    assert (tmp_path / "d" / "sub-01" / "a.bin").is_file()


@pytest.mark.slow
@pytest.mark.realdata
def test_digits69_train_then_reconstruct_from_the_mat_file(shared_data, tmp_path):
    """Real fMRI: `train experiment=digits69`, then `reconstruct` reads the .mat file again through the recipe."""
    mat = shared_data / "fmri_digits69" / "digit69_28x28.mat"
    run = tmp_path / "run"
    assert main(["train", "experiment=digits69", f"data.path={mat}", "aligner.candidates.mlp.trainer.max_epochs=20",
                 "aligner.cv=3", f"hydra.run.dir={run}"]) == 0
    from neurodecode.pipeline.decoding import reconstruct

    res = reconstruct(run / "checkpoint", [mat], tmp_path / "rec", query="split == 'test'", progress=False,
                      n_samples=1, steps=4)
    rows = {(r["pipeline"], r["metric"]): r["value"] for r in res["scores"]}
    assert res["n_trials"] == 10
    assert rows[("latents", "two_way")] > 0.9 and rows[("linear", "pixcorr")] > 0.7   # reference 0.933 / 0.787
    page = (tmp_path / "rec" / "report.html").read_text()
    assert all(f"id='trial-{i}'" in page for i in range(10)) and "SIMULATED" not in page


@pytest.mark.realdata
def test_meeg_data_recipe_reads_runs_with_a_stimulus_table(shared_data, tmp_path):
    """conf/data/meeg.yaml's loader on real EDF runs: runs concatenated, stimulus ids from events, table attached."""
    from neurodecode.pipeline.fitting import load_data

    (tmp_path / "stim.csv").write_text("stimulus,caption\nleft,imagine the left fist\nright,imagine the right fist\n")
    cfg = compose(["data=meeg", "preprocessing=eeg_motor_imagery", "data.tmin=1.0", "data.tmax=2.0",
                   "data.labels={T1: left, T2: right}", "data.stimulus={T1: left, T2: right}",
                   f"data.stimuli={tmp_path / 'stim.csv'}", "data.path=x.edf"])
    runs = [shared_data / "eegmmidb_S001" / f"S001R{r:02d}.edf" for r in (4, 8)]
    ep = load_data(cfg.data, runs)
    assert ep.shape == (30, 64, 161) and sorted(ep.table["run"].unique()) == ["1", "2"]
    assert set(ep.table["stimulus"]) == {"left", "right"} and list(ep.stimuli["caption"])[0] == "imagine the left fist"
    steps = [s["step"] for s in ep.provenance[0]["processing"]]
    assert ep.provenance[0]["step"] == "concatenate" and steps[1:4] == ["rename", "montage", "filter"]
    cfg.data.stimuli = str(tmp_path / "none.csv")
    with pytest.raises(FileNotFoundError, match="none.csv: field 'stimuli': no such stimulus table"):
        load_data(cfg.data, runs)


def test_small_images_refuse_ssim_and_the_harness_skips_it(tmp_path):
    from neurodecode.evaluation.metrics import score_outputs, ssim
    from neurodecode.core.stimuli import resize_images
    from neurodecode.core.storage import load, read_epochs

    img = np.random.default_rng(0).random((4, 8, 8))
    with pytest.raises(ValueError, match=r"field 'true': SSIM .* needs images of at least 11 × 11 pixels, got 8 × 8"):
        ssim(img, img)
    tab = score_outputs("images", img, img).table
    assert list(tab["metric"]) == ["pixcorr"] and tab["value"].iloc[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="field 'channels': expected 1 \\(grey\\) or 3 \\(RGB\\)"):
        resize_images(img[..., None], 8, 4)
    save(simulated_subject(n_train=5, n_test=2, n_voxels=4, image_size=12), tmp_path / "s.h5")
    assert load(tmp_path / "s.h5").n_epochs == 7
    with pytest.raises(ValueError, match="s.h5: field 'subject': this file holds one EpochSet, got 'sim-01'"):
        load(tmp_path / "s.h5", "sim-01")
    with pytest.warns(FutureWarning, match="neurodecode.read_epochs is deprecated"):
        assert read_epochs(tmp_path / "s.h5").n_epochs == 7


@pytest.mark.realdata
def test_reconstructing_a_file_with_the_training_trials_needs_a_query(tmp_path, shared_data):
    """The digits69 .mat holds the 90 training trials beside the 10 held out: decoding it whole would score trials
    the checkpoint was fitted on as if held out (PixCorr 0.996 instead of 0.971). Without --query it is refused,
    before anything is written; with one it runs."""
    from neurodecode import compose
    from neurodecode.pipeline.decoding import reconstruct
    from neurodecode.pipeline.fitting import run

    mat = shared_data / "fmri_digits69" / "digit69_28x28.mat"
    run(compose(["experiment=digits69", f"data.path={mat}", "aligner=ridge"]), tmp_path / "run")
    with pytest.raises(ValueError, match=r"field 'split': 90 of 100 trials are not in the held-out split.*"
                                         r"--query \"split == 'test'\""):
        reconstruct(tmp_path / "run" / "checkpoint", [mat], tmp_path / "rec", progress=False)
    assert not (tmp_path / "rec").exists()
    res = reconstruct(tmp_path / "run" / "checkpoint", [mat], tmp_path / "rec", query="split == 'train'",
                      progress=False)
    assert res["n_trials"] == 90
