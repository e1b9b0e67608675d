"""Every option of every ``conf/`` group runs: through ``neurodecode train`` (``compose`` + one tiny training run on
real recordings of its modality) for the groups a training run takes, and through the command that takes it for the
others (``features``, ``pretrain`` for tokenizers, ``adapt`` for cross-subject models). Options built from published
weights are composed and then skipped with the reason (no hub here); ``trainer=gpu`` runs only where CUDA is.

The table below says which runs cover which options; ``test_every_option_is_covered`` fails when an option is
added to ``conf/`` without a run here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from neurodecode.core.configs import CONF_DIR, compose

#: the smallest training run: the tiny experiment without its generative heads (its data keys are the simulated
#: subject's: recordings of other modalities start from the plain config instead)
BARE = ["experiment=tiny", "head@heads.images=null", "head@heads.captions=null", "images.low_level=false"]
BARE_RECORDINGS = ["name=option", "head@heads.images=null", "images.low_level=false"]
SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
#: options built from published weights (composed, then skipped offline)
WEIGHTS = {("objective", "clip_vit_l14"), ("objective", "clip_vit_l14_tokens"), ("head", "unclip_sd21_small"), ("head", "ip_adapter_sd15"),
           ("head", "gpt2_prefix_caption"), ("head", "git_base_coco"), ("encoder", "labram_base"),
           ("encoder", "cbramod"), ("head", "shap_e_img2img"), ("head", "nearest_caption")}
#: braindecode models' configs: each is fitted by tests/encoders/test_braindecode.py (eegnet also in a training run
#: and its checkpoint's stream decoder there); ``encoder=braindecode`` runs below
BRAINDECODE = {("encoder", n) for n in ("eegnet", "shallow_fbcsp", "atcnet", "eeg_conformer")}
#: the class-decoding run (objective=labels, experiment=classes): trained, reconstructed and streamed by
#: tests/pipeline/test_classes.py, which checks its accuracies against the same pipeline fitted by hand
CLASSES = {("experiment", "classes"), ("objective", "labels")}
#: groups a training run does not take, and the command that does
OTHER_COMMANDS = {"features": "neurodecode features", "tokenizer": "neurodecode pretrain (a codes MAE)",
                  "cross_subject": "neurodecode adapt", "example": "neurodecode example (tests/cli/test_example)",
                  "dataset": "neurodecode benchmark (tests/evaluation/test_benchmark)",
                  "pipeline": "neurodecode benchmark (tests/evaluation/test_benchmark)"}


def _png(path: Path, value: int) -> str:
    from PIL import Image

    img = np.zeros((16, 16), np.uint8)
    img[value % 16:, : (value * 5) % 16 + 1] = 255
    Image.fromarray(img).save(path)
    return str(path)


def _stimuli(folder: Path, ids: list[str]) -> str:
    path = folder / "stimuli.csv"
    pd.DataFrame({"stimulus": ids, "file": [_png(folder / f"{s}.png", i + 3) for i, s in enumerate(ids)],
                  "caption": [f"a picture of {s}" for s in ids]}).to_csv(path, index=False)
    return str(path)


def _paths(files: list[Path]) -> str:
    return "[" + ",".join(f"'{f}'" for f in files) + "]"


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    """The recordings each modality's runs read, with their stimulus tables (overrides per modality)."""
    import mne

    if not SHARED.is_dir():
        pytest.skip(f"real recordings not found at {SHARED}: the option runs read them")
    from readme_setups import _meeg_files, _seeg_raw

    root = tmp_path_factory.mktemp("options")
    split = ["split.column=null", "+split.by=run", "split.test=0.5", "data.subject=sub-01", "data.session=1"]
    out = {}
    eeg = [SHARED / "eegmmidb_S001" / f"S001R{r:02d}.edf" for r in (4, 8)]
    (root / "eeg").mkdir()
    out["eeg"] = ["data=meeg", f"data.path={_paths(eeg)}", f"data.stimuli={_stimuli(root / 'eeg', ['left', 'right'])}",
                  "data.tmin=1.0", "data.tmax=2.0", "data.labels={T1:left,T2:right}",
                  "data.stimulus={T1:left,T2:right}", "objective.n_components=1", *split]
    meg = _meeg_files(SHARED) / "run_01_raw.fif"
    (root / "meg").mkdir()
    out["meg"] = ["data=meeg", f"data.path={_paths([meg, meg.with_name('run_02_raw.fif')])}", f"data.stimuli={_stimuli(root / 'meg', ['a', 'b'])}",
                  "data.tmin=0.0", "data.tmax=0.5", "+data.events=stim", "+data.stim_channel='STI 014'",
                  "data.labels={1:a,3:b}", "data.stimulus={1:a,3:b}", "objective.n_components=1", *split]
    (root / "seeg").mkdir()
    runs = []
    for k in range(2):
        raw = _seeg_raw(seed=k)
        raw.set_annotations(mne.Annotations(np.arange(1.0, 18.0, 1.5), [0] * 12, ["word", "face"] * 6))
        raw.save(root / "seeg" / f"run{k}_raw.fif", verbose="error")
        runs.append(root / "seeg" / f"run{k}_raw.fif")
    regions = "{LA1:amygdala,LA2:amygdala,LA3:amygdala,LA4:amygdala,RH1:hippocampus,RH2:hippocampus,RH3:hippocampus}"
    out["seeg"] = ["data=meeg", f"data.path={_paths(runs)}",
                   f"data.stimuli={_stimuli(root / 'seeg', ['word', 'face'])}", "data.tmin=0.0", "data.tmax=0.6",
                   "data.labels=[word,face]", "data.stimulus={word:word,face:face}", f"+data.regions={regions}",
                   "objective.n_components=1", *split]
    muse = sorted((SHARED / "muse_eeg" / "N170" / "subject1").glob("*/*.csv"))[:2]
    (root / "muse").mkdir()
    out["muse"] = ["data=meeg", f"data.path={_paths(muse)}",
                   f"data.stimuli={_stimuli(root / 'muse', ['house', 'face'])}", "data.tmin=-0.1", "data.tmax=0.8",
                   "data.labels={1:house,2:face}", "data.stimulus={1:house,2:face}",
                   "+data.csv={sfreq:256.0,exclude:['Right AUX']}", "objective.n_components=1", *split]
    out["roi"] = ["data=store", f"data.path={_roi_store(root)}"]
    out["store"] = ["data=store", f"data.path={_voxel_store(root)}"]
    out["digits69"] = ["data=digits69", f"data.path={SHARED / 'fmri_digits69' / 'digit69_28x28.mat'}"]
    return out


def _voxel_store(root: Path) -> str:
    from neurodecode import save
    from neurodecode.loaders.simulate import simulated_subject

    save(simulated_subject(n_train=40, n_test=8, n_voxels=30, image_size=12), root / "voxels.h5")
    return str(root / "voxels.h5")


def _roi_store(root: Path) -> str:
    """ROI time series (10 regions × 20 volumes at TR 2 s, type fmri-roi) of the simulated subject's stimuli."""
    from neurodecode import Channels, EpochSet, save
    from neurodecode.loaders.simulate import simulated_subject

    sim = simulated_subject(n_train=40, n_test=8, n_voxels=10, image_size=12)
    rng = np.random.default_rng(0)
    data = sim.data[:, :, :1] * np.hanning(20)[None, None, :] + 0.3 * rng.normal(size=(sim.n_epochs, 10, 20))
    ep = EpochSet(data, 0.5, Channels([f"roi{i}" for i in range(10)], "fmri-roi"), sim.table, 0.0, [],
                  sim.stimuli)
    save(ep, root / "roi.h5")
    return str(root / "roi.h5")


MAE = ["trainer.max_epochs=1", "trainer.batch_size=8", "trainer.progress=false"]
#: one training run per entry: (modality, overrides) → the (group, option) pairs it runs
RUNS = {
    "bare": (None, [], [("data", "digits_sim"), ("preprocessing", "none"), ("encoder", "voxels"),
                        ("objective", "pca"), ("aligner", "ridge"), ("trainer", "cpu")]),
    "mlp": (None, ["aligner=mlp", "aligner.trainer.max_epochs=1", "aligner.hidden=32"], [("aligner", "mlp")]),
    "prior": (None, ["aligner=prior", "aligner.trainer.max_epochs=1"], [("aligner", "prior")]),
    "tiny_prior": (None, ["aligner=tiny_prior", "aligner.trainer.max_epochs=1"], [("aligner", "tiny_prior")]),
    "two_stage": (None, ["aligner=two_stage", "aligner.cv=2", "aligner.mapper.trainer.max_epochs=1", "aligner.mapper.hidden=32",
                         "aligner.prior.trainer.max_epochs=1", "aligner.prior.num_layers=1"], [("aligner", "two_stage")]),
    "auto": (None, ["aligner=auto", "aligner.cv=2", "aligner.candidates.mlp.trainer.max_epochs=1",
                    "aligner.candidates.mlp.hidden=32"], [("aligner", "auto")]),
    "pixels": (None, ["objective=pixels", "objective.image_size=8"], [("objective", "pixels")]),
    "store": ("store", [], [("data", "store")]),
    "digits69": ("digits69", ["objective.n_components=4"], [("data", "digits69")]),
    "eeg_ts": ("eeg", ["encoder=tangent_space"], [("data", "meeg"), ("encoder", "tangent_space")]),
    "eeg_vae": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=beta_vae", "encoder.trainer.max_epochs=1"],
                [("encoder", "beta_vae")]),
    "eeg_mae": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=mae_eeg", *MAE],
                [("preprocessing", "eeg_motor_imagery"), ("encoder", "mae_eeg")]),
    "tiny_labram": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=tiny_labram"], [("encoder", "tiny_labram")]),
    "tiny_cbramod": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=tiny_cbramod"],
                     [("encoder", "tiny_cbramod")]),
    "mvcnet": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=mvcnet", "encoder.trainer.max_epochs=2"],
               [("encoder", "mvcnet")]),
    "braindecode": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=braindecode", "encoder.model=EEGNet",
                            "encoder.trainer.max_epochs=2"], [("encoder", "braindecode")]),
    "tiny_mae": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=tiny_mae", *MAE], [("encoder", "tiny_mae")]),
    "tiny_mae_codes": ("eeg", ["preprocessing=eeg_motor_imagery", "encoder=tiny_mae_codes", *MAE],
                       [("encoder", "tiny_mae_codes")]),
    "muse": ("muse", ["preprocessing=erp_consumer_eeg", "encoder=tangent_space"],
             [("preprocessing", "erp_consumer_eeg")]),
    "meg": ("meg", ["preprocessing=meg_sensors", "encoder=mae_meg_spatial", *MAE],
            [("preprocessing", "meg_sensors"), ("encoder", "mae_meg_spatial")]),
    "seeg": ("seeg", ["preprocessing=seeg_bipolar", "encoder=mae_seeg_regions", *MAE],
             [("preprocessing", "seeg_bipolar"), ("encoder", "mae_seeg_regions")]),
    "roi": ("roi", ["encoder=tiny_mae_fmri_roi", "missing_positions=learned", *MAE],
            [("encoder", "tiny_mae_fmri_roi")]),
    "fc_mae": ("roi", ["encoder=tiny_mae_fc", "missing_positions=learned", *MAE], [("encoder", "tiny_mae_fc")]),
    "tiny": ("full", ["experiment=tiny", "head@heads.meshes=tiny_shap_e"],
             [("experiment", "tiny"), ("head", "tiny_unclip"), ("head", "tiny_prefix_caption"), ("head", "tiny_shap_e")]),
    "git": ("full", ["experiment=tiny", "head@heads.images=null", "head@heads.captions=tiny_git_caption",
                     "~heads.captions.n_embd"], [("head", "tiny_git_caption")]),
    "meg_brain_module": ("full", ["experiment=meg_brain_module", f"data.sensors={SHARED / 'mne_small' / 'test-ave.fif.gz'}",
                                  "data.n_train=60", "data.n_test=10", "data.n_subjects=1",
                                  "encoder.trainer.max_epochs=2"],
                         [("experiment", "meg_brain_module"), ("encoder", "brain_module"), ("aligner", "identity"),
                          ("data", "meg_sim")]),
    "sdf_mesh": ("full", ["experiment=tiny", "head@heads.images=null", "head@heads.captions=null",
                          "head@heads.meshes=sdf_mesh", "meshes.fit.max_epochs=1", "meshes.fit.procedural=12"],
                 [("head", "sdf_mesh")]),
    "ip_adapter": ("full", ["experiment=tiny", "head@heads.images=tiny_ip_adapter", "head@heads.captions=null"],
                   [("head", "tiny_ip_adapter")]),
    "demo": ("full", ["experiment=demo", "data.n_train=60", "data.n_test=8", "images.fit.max_epochs=1",
                      "aligner.cv=2", "aligner.candidates.mlp.trainer.max_epochs=1",
                      "captions.fit.max_epochs=1", "images.steps=2"], [("experiment", "demo")]),
    "digits69_experiment": ("digits69_full", ["experiment=digits69", "aligner.candidates.mlp.trainer.max_epochs=2"],
                            [("experiment", "digits69")]),
    "digits69_images": ("digits69_full", ["experiment=digits69_images", "aligner=ridge", "images.fit.max_epochs=1",
                                          "images.steps=2"], [("experiment", "digits69_images")]),
}


def _all_options() -> set[tuple[str, str]]:
    return {(p.parent.name, p.stem) for p in CONF_DIR.glob("*/*.yaml")}


def test_every_option_is_covered():
    """Each option of conf/ is run below (a training run, its group's command, or composed + skipped for
    weights / GPU), so a new option needs a run here."""
    covered = ({pair for _, _, pairs in RUNS.values() for pair in pairs} | WEIGHTS | BRAINDECODE | CLASSES
               | {("trainer", "gpu")})
    covered |= {(g, o) for g, o in _all_options() if g in OTHER_COMMANDS}
    assert _all_options() - covered == set()
    ran = len({pair for _, _, pairs in RUNS.values() for pair in pairs})
    print(f"\n{len(_all_options())} options: {ran} in training runs, "
          f"{len({p for p in _all_options() if p[0] in OTHER_COMMANDS})} through their commands, "
          f"{len(WEIGHTS)} composed (published weights), trainer=gpu where CUDA is")


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("run", sorted(RUNS))
def test_every_option_trains(run, recordings, tmp_path):
    from neurodecode.pipeline.fitting import run as train_run

    modality, overrides, pairs = RUNS[run]
    base = [] if modality in ("full", "digits69_full") else BARE if modality is None else BARE_RECORDINGS
    data = recordings.get("digits69" if modality == "digits69_full" else modality, []) if modality else []
    if modality == "digits69_full":
        data = [o for o in data if not o.startswith("data=")]
    cfg = compose([*base, *data, *overrides])
    for group, option in pairs:                     # the run really uses the options it covers
        choice = {"head": None, "experiment": cfg.get("name")}.get(group, "")
        if group == "experiment":
            assert choice == option
    metrics = train_run(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint" / "model_index.json").is_file()
    assert metrics["n_train"] > 0 and metrics["n_heldout"] > 0
    values = {r["metric"]: r["value"] for r in metrics["scores"]}
    assert "two_way" in values and 0.0 <= values["two_way"] <= 1.0
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["scores"] == metrics["scores"]
    heads = {o for g, o in pairs if g == "head"}
    if heads:
        meta = json.loads((tmp_path / "run" / "checkpoint" / "model_index.json").read_text())
        built = {cfg.heads[k]._target_ for k in meta["head_configs"]}
        assert len(built) == len(heads) and ("tiny_unclip" not in heads or "images" in meta["trained_heads"])


@pytest.mark.parametrize(("group", "option"), sorted(WEIGHTS))
def test_options_with_published_weights_compose_then_skip(group, option):
    extra = {("head", "nearest_caption"): ["heads.captions.captions_file=bank.txt"]}.get((group, option), [])
    key = {"objective": "objective", "encoder": "encoder", "head": f"head@heads.{_slot(option)}"}[group]
    cfg = compose(["experiment=tiny", f"{key}={option}", *extra])
    node = cfg.heads[_slot(option)] if group == "head" else cfg[group]
    assert node.get("pretrained") or node.get("_target_", "").endswith(("from_pretrained", "from_files",
                                                                        "from_published"))
    pytest.skip(f"{group}={option} loads published weights, which cannot be downloaded here (no hub); composed only"
                + (" (the key mapping is tested on a tiny checkpoint in the published layout: "
                   "tests/encoders/test_published.py)" if group == "encoder" else ""))


def _slot(option: str) -> str:
    return {"gpt2_prefix_caption": "captions", "nearest_caption": "captions", "git_base_coco": "captions",
            "shap_e_img2img": "meshes"}.get(
        option, "images")


def test_the_gpu_trainer_runs_where_cuda_is(tmp_path):
    import torch

    cfg = compose([*BARE, "trainer=gpu", "encoder=tiny_mae", "trainer.max_epochs=1"])
    assert cfg.trainer.device.startswith("cuda")
    if not torch.cuda.is_available():
        pytest.skip("trainer=gpu: no CUDA device here; composed only")
    from neurodecode.pipeline.fitting import run as train_run

    assert train_run(compose([*BARE, "trainer=gpu"]), tmp_path / "r")["n_train"] > 0


# -- groups a training run does not take --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def eeg_store(tmp_path_factory):
    from neurodecode import save
    from readme_setups import _eegmmidb

    if not SHARED.is_dir():
        pytest.skip(f"real recordings not found at {SHARED}")
    path = tmp_path_factory.mktemp("store") / "eeg.h5"
    save(_eegmmidb(SHARED, (4,)), path)
    return path


@pytest.mark.slow
@pytest.mark.realdata
@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "features").glob("*.yaml")))
def test_every_feature_option_runs_through_neurodecode_features(option, eeg_store, tmp_path, capsys):
    from neurodecode.cli import main

    params = ["sfreq=160", "bands=[[8,12],[12,30]]"] if option == "filterbank_tangent_space" else []
    assert main(["features", str(eeg_store), "--recipe", option, *params, "--out", str(tmp_path / "f.parquet")]) == 0
    table = pd.read_parquet(tmp_path / "f.parquet")
    assert len(table) == 15 and np.isfinite(table.filter(like="f").select_dtypes(float).to_numpy()).all()


@pytest.mark.realdata
def test_the_tokenizer_option_trains_through_pretrain(eeg_store, tmp_path):
    """tiny_vq is the tokenizer of tiny_mae_codes: `neurodecode pretrain --encoder tiny_mae_codes` trains it first."""
    from neurodecode.cli import main
    from neurodecode.encoders import load_model

    assert main(["pretrain", str(eeg_store), "--encoder", "tiny_mae_codes", "trainer.max_epochs=1",
                 "trainer.batch_size=8", "trainer.progress=false", "--out", str(tmp_path / "m")]) == 0
    model = load_model(tmp_path / "m")
    assert model.tokenizer is not None and model.config["target"] == "codes"


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF_DIR / "cross_subject").glob("*.yaml")))
def test_every_cross_subject_option_adapts_through_neurodecode_adapt(option, tmp_path, capsys):
    from neurodecode import EpochSet, save
    from neurodecode.cli import main
    from neurodecode.core.configs import build
    from neurodecode.encoders import load_model, save_model

    shrink = ["n_inputs={s0: 20, s1: 24}", "shared_dim=16", "hidden=32", "pool_size=16", "out_dim=8"]
    model = build("cross_subject", option, shrink if option == "cross_subject_fmri" else [])
    save_model(tmp_path / "model", model)
    rng = np.random.default_rng(0)
    ids = np.array([f"img{i}" for i in range(12)])
    ep = EpochSet.from_array(rng.normal(size=(12, 18, 1)), 1.0, [f"v{i}" for i in range(18)], "fmri-voxel",
                             table={"subject": ["new"] * 12, "stimulus": ids})
    save(ep, tmp_path / "new.h5")
    np.savez(tmp_path / "t.npz", stimulus=ids, target=rng.normal(size=(12, model.config["out_dim"])))
    assert main(["adapt", str(tmp_path / "model"), str(tmp_path / "new.h5"), "--name", "new", "--method", "reset",
                 "--targets", str(tmp_path / "t.npz"), "trainer.max_epochs=1", "trainer.progress=false",
                 "--out", str(tmp_path / "adapted")]) == 0
    adapted = load_model(tmp_path / "adapted")
    assert adapted.subjects == [*model.subjects, "new"]
