"""What the README's blocks take for granted: the files they name and the variables they use, made from
../shared/data and small synthetic data. One function per ``<!-- test: setup NAME -->`` marker; each gets the
block's folder and the shared data folder, writes the files the block names there and returns the block's
variables. Files that take a while are built once per session and linked in."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

import numpy as np

CACHE = Path(tempfile.mkdtemp(prefix="neurodecode-readme-"))
STEPS = [{"step": "rename", "preset": "eegbci"}, {"step": "montage", "name": "standard_1005"},
         {"step": "filter", "l_freq": 7.0, "h_freq": 30.0}]


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src, dst)


@functools.cache
def _eegmmidb(shared: Path, runs: tuple[int, ...] = (4, 8, 12), subject: str = "S001"):
    """EEGMMIDB subject 1 (imagined fists for runs 4/8/12, executed for 3/7/11) as one EpochSet, 1-2 s after the
    cues, 7-30 Hz."""
    from neurodecode.core.epochs import concatenate
    from neurodecode.loaders.meeg import load_epochs

    parts = [load_epochs(shared / "eegmmidb_S001" / f"S001R{r:02d}.edf", return_report=False, tmin=1.0, tmax=2.0,
                         labels={"T1": "left", "T2": "right"}, steps=STEPS, subject=subject, session="1",
                         run=str(r)) for r in runs]
    return concatenate(parts)


@functools.cache
def _stores(shared: Path) -> Path:
    """sub-01.h5 (imagined runs), collection.h5 (imagined and executed runs as two stand-in "subjects")."""
    from neurodecode import EpochCollection, save

    imagined = _eegmmidb(shared)
    executed = _eegmmidb(shared, (3, 7, 11), "S001exec")
    save(imagined, CACHE / "sub-01.h5")
    save(EpochCollection([imagined, executed]), CACHE / "collection.h5")
    return CACHE


def eeg_store(folder: Path, shared: Path) -> dict:
    """The EEG stores the command-line examples read: sub-01_eeg.h5 / sub-01.h5, collection.h5."""
    cache = _stores(shared)
    for name in ("sub-01_eeg.h5", "sub-01.h5"):
        _link(cache / "sub-01.h5", folder / name)
    _link(cache / "collection.h5", folder / "collection.h5")
    return {}


def eegmmidb_files(folder: Path, shared: Path) -> dict:
    """The EEGMMIDB EDF runs under their own names (S001R04.edf, ...)."""
    for f in (shared / "eegmmidb_S001").glob("*.edf"):
        _link(f, folder / f.name)
    return {}


def _eeg_table(n: int, seed: int = 0):
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"subject": "sub-01", "session": "1", "run": [str(1 + i * 2 // n) for i in range(n)],
                         "stimulus": [f"img{i % 5}" for i in range(n)],
                         "label": rng.permutation(["face", "house"] * (n // 2) + ["face"] * (n % 2)),
                         "onset": np.arange(n) * 2.0})


def epoch_arrays(folder: Path, shared: Path) -> dict:
    """Three EEG channels' positions, 12 epochs of 0.5 s at 250 Hz with their table, 12 fMRI betas of 40 voxels."""
    rng = np.random.default_rng(0)
    xyz = np.array([[-0.05, 0.0, 0.06], [0.0, 0.0, 0.09], [0.05, 0.0, 0.06]])
    return {"xyz_in_metres": xyz, "data": rng.normal(scale=1e-5, size=(12, 3, 125)), "trials": _eeg_table(12),
            "betas": rng.normal(size=(12, 40, 1))}


def epoch_sets(folder: Path, shared: Path) -> dict:
    """``ep`` (12 epochs, runs 1-2, faces and houses), its two runs, three subjects with their own channel sets, the
    same epochs as ``mne.Epochs``, and a boolean ``mask``."""
    import neurodecode as nd

    rng = np.random.default_rng(1)
    ep = nd.EpochSet(rng.normal(scale=1e-5, size=(12, 3, 125)), 250.0,
                     nd.Channels(["C3", "Cz", "C4"], "eeg", epoch_arrays(folder, shared)["xyz_in_metres"], "head"),
                     _eeg_table(12), tmin=-0.2)
    subjects = [nd.EpochSet.from_array(rng.normal(scale=1e-5, size=(6, n, 50)), 250.0,
                                       [f"E{i}" for i in range(n)], subject=f"sub-0{k + 1}",
                                       table={"run": ["1", "1", "1", "2", "2", "2"]})
                for k, n in enumerate((3, 4, 5))]
    return {"ep": ep, "mask": (ep.table["label"] == "face").to_numpy(), "run1": ep.query("run == '1'"),
            "run2": ep.query("run == '2'"), "sub1": subjects[0], "sub2": subjects[1], "sub3": subjects[2],
            "mne_epochs": nd.to_mne(ep)}


@functools.cache
def _meeg_files(shared: Path) -> Path:
    """A MEG+EEG run with a stim channel (the MNE test evoked's sensors, synthetic signals, events 1 and 3), the
    evoked file, an sEEG atlas, a small BIDS data set (an EEGMMIDB run whose cues are renamed face/house)."""
    import gzip
    import shutil

    import mne
    import mne_bids
    import nibabel as nib
    import pandas as pd

    out = CACHE / "meeg"
    out.mkdir()
    with gzip.open(shared / "mne_small" / "test-ave.fif.gz") as src, open(out / "sample-ave.fif", "wb") as dst:
        shutil.copyfileobj(src, dst)
    evoked = mne.read_evokeds(out / "sample-ave.fif", verbose="error")[0]
    info = mne.pick_info(evoked.info, mne.pick_types(evoked.info, meg=True, eeg=True, stim=False))
    sfreq, n = info["sfreq"], int(20 * info["sfreq"])
    rng = np.random.default_rng(0)
    scale = np.array([1e-12 if t == "mag" else 1e-11 if t == "grad" else 1e-5 for t in info.get_channel_types()])
    stim = np.zeros((1, n))
    stim[0, (np.arange(1, 19) * sfreq).astype(int)] = [1, 3] * 9
    raw = mne.io.RawArray(np.vstack([rng.normal(size=(len(scale), n)) * scale[:, None], stim]),
                          mne.create_info(info.ch_names + ["STI 014"], sfreq,
                                          info.get_channel_types() + ["stim"]), verbose="error")
    with raw.info._unlock():
        for ch, src in zip(raw.info["chs"], info["chs"]):
            ch.update({k: src[k] for k in ("loc", "coil_type", "unit", "coord_frame")})
        raw.info["dev_head_t"] = info["dev_head_t"]
    raw.save(out / "run_01_raw.fif", verbose="error")
    second = raw.copy()                                     # a second run: same sensors and events, other noise
    second._data[:-1] = np.random.default_rng(1).normal(size=(len(scale), n)) * scale[:, None]
    second.save(out / "run_02_raw.fif", verbose="error")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    vol = np.zeros((91, 109, 91), np.int16)
    vol[:45], vol[46:] = 1, 2                              # x < 0: label 1, x > 0: label 2
    nib.save(nib.Nifti1Image(vol, affine), out / "atlas_mni.nii.gz")
    edf = mne.io.read_raw_edf(shared / "eegmmidb_S001" / "S001R04.edf", verbose="error")
    edf.annotations.rename({"T1": "face", "T2": "house"})
    bp = mne_bids.BIDSPath(subject="01", session="01", task="n170", run="1", datatype="eeg", root=out / "bids")
    mne_bids.write_raw_bids(edf, bp, verbose="error", overwrite=True)
    events = bp.copy().update(suffix="events", extension=".tsv").fpath
    table = pd.read_csv(events, sep="\t")
    table["stim_file"] = [f"stimuli/{t}_{i}.png" for i, t in enumerate(table["trial_type"])]
    table.to_csv(events, sep="\t", index=False, na_rep="n/a")
    return out


def _seeg_raw(seed: int = 0):
    """Two shafts (LA1-4 in the left amygdala region, RH1-3 in the right hippocampus region), MNI positions; ``seed``
    draws the signals (another seed: another recording)."""
    import mne

    names = ["LA1", "LA2", "LA3", "LA4", "RH1", "RH2", "RH3"]
    raw = mne.io.RawArray(np.random.default_rng(seed).normal(scale=20e-6, size=(7, 20000)),
                          mne.create_info(names, 1000.0, "seeg"), verbose="error")
    pos = {n: np.array([-0.02 - 0.004 * k, -0.005, -0.015]) for k, n in enumerate(names[:4])}
    pos.update({n: np.array([0.03 + 0.004 * k, -0.02, -0.01]) for k, n in enumerate(names[4:])})
    raw.set_montage(mne.channels.make_dig_montage(pos, coord_frame="mni_tal"), verbose="error")
    raw.set_annotations(mne.Annotations([2.0, 5.0, 8.0, 11.0, 14.0], [0] * 5, ["word"] * 5))
    return raw


def meeg_files(folder: Path, shared: Path) -> dict:
    """The recordings of the EEG/MEG/sEEG section: real EEG (EDF, Muse CSV), a MEG run and evoked file, an sEEG
    recording (``raw_seeg``) with an MNI atlas, a BIDS folder, and the preprocessing ``steps``."""
    cache = _meeg_files(shared)
    _link(shared / "eegmmidb_S001" / "S001R04.edf", folder / "S001R04.edf")
    _link(shared / "eegmmidb_S001" / "S001R08.edf", folder / "long_recording.edf")
    _link(shared / "muse_eeg" / "N170" / "subject1" / "session1" / "data_2017-09-13-15.30.01.csv",
          folder / "muse_n170.csv")
    for name in ("run_01_raw.fif", "sample-ave.fif", "atlas_mni.nii.gz", "bids"):
        _link(cache / name, folder / name)
    return {"raw_seeg": _seeg_raw(), "steps": [{"step": "filter", "l_freq": 1.0, "h_freq": 40.0}]}


@functools.cache
def _fmri_files(shared: Path) -> Path:
    """Two real Haxby 2001 runs (sub001, 2.5 cm voxels) laid out as BIDS + fMRIPrep derivatives: events.tsv,
    JSON sidecars, and a confounds TSV with the runs' real motion estimates (+ derivatives and squares) and
    white-matter / outside-brain mean signals (stand-ins for fMRIPrep's white_matter / csf); the brain mask, a
    two-label atlas on the same grid, category stimulus files, and NSD-style betas in HDF5."""
    import json

    import h5py
    import nibabel as nib
    import pandas as pd

    out = CACHE / "fmri"
    hax = shared / "haxby2001_slice" / "openfmri_haxby2001" / "sub001"
    prep, raw = out / "derivatives" / "fmriprep" / "sub-01" / "func", out / "sub-01" / "func"
    prep.mkdir(parents=True)
    raw.mkdir(parents=True)
    brain = np.asarray(nib.load(hax / "masks" / "25mm" / "brain.nii.gz").dataobj) > 0
    white = np.asarray(nib.load(hax / "masks" / "25mm" / "white.nii.gz").dataobj) > 0
    categories = set()
    for r in (1, 2):
        run = hax / "BOLD" / f"task001_run{r:03d}"
        img = nib.load(run / "bold_25mm.nii.gz")
        name = f"sub-01_task-img_run-{r}_space-MNI152NLin2009cAsym_desc-preproc_bold"
        nib.save(img, prep / f"{name}.nii.gz")
        (prep / f"{name}.json").write_text(json.dumps({"RepetitionTime": 2.5, "TaskName": "img"}))
        events = pd.read_csv(run / "bold_events.tsv", sep="\t")
        categories |= set(events["trial_type"])
        events.to_csv(raw / f"sub-01_task-img_run-{r}_events.tsv", sep="\t", index=False)
        motion = np.loadtxt(run / "bold_moest.txt")
        data = np.asarray(img.dataobj, dtype=np.float64)
        cols = {"white_matter": data[white].mean(0), "csf": data[~brain].mean(0)}
        for k, col in enumerate(["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]):
            d = np.r_[np.nan, np.diff(motion[:, k])]
            cols.update({col: motion[:, k], f"{col}_derivative1": d, f"{col}_power2": motion[:, k] ** 2,
                         f"{col}_derivative1_power2": d ** 2})
        conf = prep / f"sub-01_task-img_run-{r}_desc-confounds_timeseries.tsv"
        pd.DataFrame(cols).to_csv(conf, sep="\t", index=False, na_rep="n/a")
        conf.with_suffix(".json").write_text("{}")
    affine = img.affine
    nib.save(nib.Nifti1Image(brain.astype(np.uint8), affine), out / "brain_mask.nii.gz")
    atlas = np.zeros(brain.shape, np.int16)
    atlas[brain & (np.arange(brain.shape[1]) < 5)[None, :, None]] = 1
    atlas[brain & (np.arange(brain.shape[1]) >= 5)[None, :, None]] = 2
    nib.save(nib.Nifti1Image(atlas, affine), out / "atlas_labels.nii.gz")
    (out / "stimuli").mkdir()
    for c in sorted(categories):
        (out / "stimuli" / f"{c}.png").write_bytes(b"\x89PNG\r\n\x1a\n")   # the files only have to exist here
    rng = np.random.default_rng(0)
    with h5py.File(out / "betas_session01.hdf5", "w") as f:
        f["betas"] = rng.normal(size=(30, 50)).astype(np.float32)
    return out


def fmri_files(folder: Path, shared: Path) -> dict:
    """The fMRI section's files (see ``_fmri_files``), the Haxby tutorial slice with its attributes, digits69, the
    MinD-3D samples; ``stim_table`` (category → file) and ``trial_table`` of the betas."""
    import pandas as pd

    cache = _fmri_files(shared)
    for name in ("derivatives", "sub-01", "brain_mask.nii.gz", "atlas_labels.nii.gz", "stimuli",
                 "betas_session01.hdf5"):
        _link(cache / name, folder / name)
    tut = shared / "haxby2001_slice" / "tutorial_slice"
    for name in ("bold.nii.gz", "mask.nii.gz", "attributes_literal.txt"):
        _link(tut / name, folder / name)
    _link(shared / "fmri_digits69" / "digit69_28x28.mat", folder / "digit69_28x28.mat")
    _link(shared / "mind3d_demo", folder / "mind3d_demo")
    files = sorted(p.name for p in (cache / "stimuli").iterdir())
    return {"stim_table": pd.DataFrame({"stimulus": [f[:-4] for f in files], "file": files}),
            "trial_table": pd.DataFrame({"stimulus": [f"nsd{i % 10:05d}" for i in range(30)],
                                         "session": "1", "run": [str(1 + i // 10) for i in range(30)]})}


@functools.cache
def _cross_subject(shared: Path) -> Path:
    """A cross-subject model trained on two planted subjects (runs/xsub), the voxel stores of four subjects
    (sub-0N_betas.h5: 90 stimuli each, 9 for the new ones) and targets for reset-tuning (clip_targets.npz)."""
    import torch

    from neurodecode import EpochSet, save
    from neurodecode.core.training import Trainer
    from neurodecode.encoders import save_model
    from neurodecode.encoders.models import CrossSubjectModel, pad_inputs
    from neurodecode.loaders.simulate import planted_subjects

    out = CACHE / "xsub"
    out.mkdir()
    d = planted_subjects(n_subjects=4, n_stimuli=100, seed=1)
    ids = np.array([f"img{i}" for i in range(100)])
    train = np.arange(90)
    torch.manual_seed(0)
    model = CrossSubjectModel({"sub-01": d["X"][0].shape[1], "sub-02": d["X"][1].shape[1]}, d["Y"].shape[1],
                              shared_dim=16, hidden=32, dropout=0.0)
    Xp, subj = pad_inputs([d["X"][0][train], d["X"][1][train]])
    data = torch.utils.data.TensorDataset(torch.as_tensor(Xp), torch.as_tensor(subj),
                                          torch.as_tensor(np.concatenate([d["Y"][train]] * 2)))
    Trainer(max_epochs=20, batch_size=30, lr=3e-3).fit(model, lambda m, b: m.loss(*b)["loss"], data)
    save_model(out / "runs" / "xsub", model)
    for s in range(4):
        rows = train if s < 2 else train[:9]
        x = d["X"][s][rows][:, :, None]
        save(EpochSet.from_array(x, 1.0, [f"v{i}" for i in range(x.shape[1])], "fmri-voxel",
                                 table={"subject": f"sub-0{s + 1}", "stimulus": ids[rows]}),
             out / f"sub-0{s + 1}_betas.h5")
    np.savez(out / "clip_targets.npz", stimulus=ids[train[:9]], target=d["Y"][train[:9]])
    return out


def encoder_files(folder: Path, shared: Path) -> dict:
    """The EEG store for pretraining and the cross-subject model with its subjects' stores."""
    eeg_store(folder, shared)
    cache = _cross_subject(shared)
    for f in cache.iterdir():
        _link(f, folder / f.name)
    return {}


def encoder_arrays(folder: Path, shared: Path) -> dict:
    """The EEG store, and voxel arrays of four planted subjects (40, 30, 25, 35 voxels; 60 stimuli, 8-d latents):
    ``voxels_sub0N``, their stimulus ids and the targets of subjects 1, 2 and 4."""
    from neurodecode.loaders.simulate import planted_subjects

    eeg_store(folder, shared)
    d = planted_subjects(n_subjects=4, n_stimuli=60, out_dim=8, seed=2)
    ids = np.array([f"img{i}" for i in range(60)])
    X = [x[:, :n].astype(np.float32) for x, n in zip(d["X"], (40, 30, 25, 35))]   # the first voxels of each
    Y = d["Y"].astype(np.float32)
    return {"voxels_sub01": X[0], "voxels_sub02": X[1], "voxels_sub03": X[2][:6], "voxels_sub04": X[3][:6],
            "ids01": ids, "ids02": ids, "ids_sub03": ids[:6], "targets_sub01": Y, "targets_sub02": Y,
            "targets_sub04": Y[:6]}


TINY_CLIP = {"embed_dim": 32, "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
             "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}}


@functools.cache
def _tiny_clip() -> str:
    """A tiny open_clip architecture registered from a local config (random weights, no download)."""
    import json

    import open_clip

    path = CACHE / "nd-readme-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    open_clip.add_model_config(path)
    return "nd-readme-clip"


def alignment_files(folder: Path, shared: Path) -> dict:
    """digits69 under its own name, and ``TINY_CLIP``: the name of a tiny open_clip model in place of ViT-B-32."""
    _link(shared / "fmri_digits69" / "digit69_28x28.mat", folder / "digit69_28x28.mat")
    return {"TINY_CLIP": _tiny_clip()}


def repo_benchmarks(folder: Path, shared: Path) -> dict:
    """The repository's benchmarks/ folder, for ``python benchmarks/...`` commands (their ``--data``: the shared
    recordings)."""
    _link(Path(__file__).resolve().parents[1] / "benchmarks", folder / "benchmarks")
    return {}


def head_arrays(folder: Path, shared: Path) -> dict:
    """digits69 for the heads: voxels of the 90 training and 10 test trials, the training images at 32 × 32, a
    tiny CLIP (``TINY_CLIP``, 32-d) with the training images' embeddings and ridge predictions of the test
    trials' embeddings, captions ("a handwritten six"), a caption bank, trial ids and subjects."""
    import torch

    from neurodecode.alignment import RidgeAlignment
    from neurodecode.alignment.embeddings import OpenCLIPEmbedder
    from neurodecode.loaders.precomputed import DIGITS69, load_mat

    ep = load_mat(shared / "fmri_digits69" / "digit69_28x28.mat", **DIGITS69)
    train = (ep.table["split"] == "train").to_numpy()
    pixels = np.stack(ep.stimuli.set_index("stimulus").loc[ep.table["stimulus"], "pixels"]).reshape(-1, 1, 28, 28)
    images = torch.nn.functional.interpolate(torch.as_tensor(pixels, dtype=torch.float32), size=32,
                                             mode="bilinear").numpy()[:, 0]
    torch.manual_seed(0)
    clip = OpenCLIPEmbedder(_tiny_clip(), None, cache_dir=CACHE / "clip-cache")
    embeds = clip.embed_images(list(images))
    X = ep.data[:, :, 0]
    pred = RidgeAlignment().fit(X[train], embeds[train]).predict(X[~train]).astype(np.float32)
    words = {"6": "six", "9": "nine"}
    captions = [f"a handwritten {words[str(lab)]}" for lab in ep.table["label"]]
    return {"TINY_CLIP": _tiny_clip(), "X_train": X[train], "X_test": X[~train], "train_images": images[train],
            "pred_clip_embeds": pred, "pred_text_embeds": pred, "train_embeds": embeds[train],
            "train_captions": [c for c, t in zip(captions, train) if t],
            "bank_captions": ["a handwritten six", "a handwritten nine", "a face", "a house", "a cat", "a shoe"],
            "trial_ids": [str(i) for i in np.flatnonzero(~train)], "subjects": ["01"] * int((~train).sum())}


def store_arrays(folder: Path, shared: Path) -> dict:
    """``ep`` (120 epochs of 3 channels, runs 1-3), the channels ``chs`` of a 1 kHz recording and ``blocks`` of
    (data, rows) to append: 3 blocks of 20 epochs × 801 samples."""
    import pandas as pd

    import neurodecode as nd

    rng = np.random.default_rng(3)
    ep = nd.EpochSet.from_array(rng.normal(scale=1e-5, size=(120, 3, 50)), 250.0, ["C3", "Cz", "C4"],
                                table={"run": [str(1 + i // 40) for i in range(120)], "subject": "sub-01"})
    chs = nd.Channels(["C3", "Cz", "C4"], "eeg")
    blocks = [(rng.normal(scale=1e-5, size=(20, 3, 801)),
               pd.DataFrame({"subject": "sub-01", "run": str(b + 1), "label": ["left", "right"] * 10}))
              for b in range(3)]
    return {"ep": ep, "chs": chs, "blocks": blocks}


def evaluate_files(folder: Path, shared: Path) -> dict:
    """The EEG stores, and decoded outputs with their truth: 400 predicted / true CLIP-like vectors, 4 decoded
    captions with their references."""
    eeg_store(folder, shared)
    rng = np.random.default_rng(4)
    true = rng.normal(size=(400, 32))
    np.save(folder / "true_clip.npy", true)
    np.save(folder / "pred_clip.npy", true + 2.0 * rng.normal(size=true.shape))
    (folder / "references.txt").write_text("a dog on a sofa\na red car\na bowl of fruit\na man riding a horse\n")
    (folder / "decoded.txt").write_text("a dog on a couch\na red truck\na bowl of apples\na person on a horse\n")
    return {}


def moabb_offline(folder: Path, shared: Path) -> dict:
    """EEGMMIDB subject 1's imagery runs where MOABB's PhysionetMI downloader looks (mne_data/ in the block's
    folder), and the environment of an offline MOABB user: that folder as MNE's data path, NEMAR off."""
    from moabb.datasets.download import _url_to_local_path
    from moabb.datasets.physionet_mi import BASE_URL

    for run in (4, 8, 12):
        url = BASE_URL + f"S001/S001R{run:02d}.edf"
        target = Path(_url_to_local_path(url, folder / "mne_data" / "MNE-eegbci-data"))
        _link(shared / "eegmmidb_S001" / f"S001R{run:02d}.edf", target)
    return {"__env__": {"MNE_DATA": str(folder / "mne_data"), "MNE_DATASETS_EEGBCI_PATH": str(folder / "mne_data"),
                        "MOABB_DOWNLOAD_PROVIDER": "upstream"}}

