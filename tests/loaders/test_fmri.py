"""fMRI loaders: real Haxby / digits69 / MinD-3D data, a synthetic BIDS study with planted responses, bad input."""

import json

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurodecode import load, save
from neurodecode.loaders.precomputed import DIGITS69, load_betas, load_mat, load_surface
from neurodecode.loaders.fmri import make_masker, read_run, read_volumes, to_nifti
from neurodecode.loaders.glm import trial_responses
from neurodecode.loaders.rois import pool_rois, roi_timeseries

TR = 2.0


def synthetic_bids(root, n_runs=2, n_trials=12, shape=(7, 8, 9), noise=0.05, seed=0):
    """BIDS func/ runs (7×8×9 voxels, unequal on purpose) whose voxels respond to each trial with a planted
    amplitude: voxel v, trial k → amplitude a_k · w_v (glover HRF), plus white noise."""
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(seed)
    n_vol = 150
    weights = rng.uniform(0.5, 1.5, size=shape)
    weights[0] = 0  # a slab of voxels that do not respond
    affine = np.diag([3.0, 3.0, 3.5, 1.0])
    func = root / "sub-01" / "func"
    func.mkdir(parents=True)
    runs, planted = [], []
    for r in range(1, n_runs + 1):
        onsets = 10.0 + np.arange(n_trials) * 22.0 + rng.uniform(0, 4, n_trials)
        amps = rng.uniform(0.2, 2.0, n_trials)
        signal = np.zeros(n_vol)
        for onset, amp in zip(onsets, amps):
            reg, _ = compute_regressor(np.array([[onset], [1.0], [1.0]]), "glover", np.arange(n_vol) * TR)
            signal += amp * reg[:, 0]
        data = 100.0 + weights[..., None] * signal + noise * rng.normal(size=shape + (n_vol,))
        name = f"sub-01_task-img_run-{r}_bold"
        nib.save(nib.Nifti1Image(data.astype(np.float32), affine), func / f"{name}.nii.gz")
        (func / f"{name}.json").write_text(json.dumps({"RepetitionTime": TR, "TaskName": "img"}))
        events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": ["a", "b"] * (n_trials // 2),
                               "stim_file": [f"stim/img{(k + r) % 5}.png" for k in range(n_trials)]})
        events.to_csv(func / f"sub-01_task-img_run-{r}_events.tsv", sep="\t", index=False)
        runs.append((func / f"{name}.nii.gz", func / f"sub-01_task-img_run-{r}_events.tsv"))
        planted.append(amps)
    return runs, np.concatenate(planted), weights


@pytest.mark.parametrize("method", ["lss", "lsa", "tr_average"])
def test_glm_recovers_planted_trial_amplitudes(tmp_path, method):
    files, planted, weights = synthetic_bids(tmp_path)
    runs = [read_run(b, e, run=str(i + 1)) for i, (b, e) in enumerate(files)]
    assert runs[0].tr == TR  # from the BIDS sidecar
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), runs[0].img.affine)
    ep = trial_responses(runs, mask, method=method, subject="01")
    assert ep.shape == (24, int((weights > 0).sum()), 1) and ep.sfreq == 1 / TR
    est = ep.data[:, :, 0].mean(1)
    r = np.corrcoef(est, planted)[0, 1]
    print(f"\n{method}: correlation of recovered and planted trial amplitudes {r:.4f}")
    assert r >= 0.9
    t = ep.table
    assert t["run"].tolist() == ["1"] * 12 + ["2"] * 12 and t["label"].tolist()[:2] == ["a", "b"]
    assert t["stimulus"].iloc[0] == "stim/img1.png" and (t["subject"] == "01").all()
    assert [s["step"] for s in ep.provenance] == ["read_run", "mask", "trial_responses"]


@pytest.mark.filterwarnings("ignore:Computed an empty mask")
def test_repeats_averaged_and_stimulus_files_checked(tmp_path):
    files, _, weights = synthetic_bids(tmp_path)
    runs = [read_run(b, e, run=str(i + 1)) for i, (b, e) in enumerate(files)]
    with pytest.raises(ValueError, match=r"run-1_bold.nii.gz: field 'mask': no mask given and nilearn's EPI mask failed"):
        trial_responses(runs, method="tr_average")  # a flat synthetic volume has no EPI contrast
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), runs[0].img.affine)
    full = trial_responses(runs, mask, method="tr_average")
    avg = trial_responses(runs, mask, method="tr_average", average_repeats=True)
    assert avg.n_epochs == 5 and sorted(avg.table["n_repeats"]) == [4, 4, 5, 5, 6]  # 24 trials, img((k + run) % 5)
    first = avg.table["stimulus"].iloc[0]
    np.testing.assert_allclose(avg.data[0], full.data[(full.table["stimulus"] == first).to_numpy()].mean(0), rtol=1e-5)
    stimuli = pd.DataFrame({"stimulus": [f"stim/img{k}.png" for k in range(5)],
                            "file": [f"stim/img{k}.png" for k in range(5)]})
    with pytest.raises(FileNotFoundError, match=r"field 'stimuli.file': expected a file for every stimulus id, got 5 missing"):
        trial_responses(runs, mask, method="tr_average", stimuli=stimuli, stim_root=tmp_path)
    (tmp_path / "stim").mkdir()
    for k in range(5):
        (tmp_path / "stim" / f"img{k}.png").write_bytes(b"png")
    ep = trial_responses(runs, mask, method="tr_average", stimuli=stimuli, stim_root=tmp_path)
    assert len(ep.stimuli) == 5
    with pytest.raises(ValueError, match=r"field 'stimuli': expected a row for every stimulus id of the table"):
        trial_responses(runs, mask, method="tr_average", stimuli=stimuli.iloc[:3], stim_root=tmp_path)


def test_back_to_the_brain_after_a_store_round_trip(tmp_path):
    files, _, weights = synthetic_bids(tmp_path)
    runs = [read_run(*files[0])]
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), runs[0].img.affine)
    ep = trial_responses(runs, mask, method="lsa")
    save(ep, tmp_path / "betas.h5")
    back = load(tmp_path / "betas.h5")
    img = to_nifti(np.arange(1, back.n_channels + 1, dtype=float), back)
    vol = np.asarray(img.dataobj)
    assert vol.shape == (7, 8, 9) and np.allclose(img.affine, runs[0].img.affine)
    assert (vol[0] == 0).all() and (vol[1:] > 0).all()
    np.testing.assert_array_equal(np.ravel(make_masker(mask, runs[0].img).transform(img)),
                                  np.arange(1, back.n_channels + 1))
    xyz = back.channels.pos[0] * 1000
    np.testing.assert_allclose(xyz, img.affine[:3, :3] @ [1, 0, 0] + img.affine[:3, 3])  # first voxel v1_0_0


def test_roi_timeseries_windows(tmp_path):
    files, _, weights = synthetic_bids(tmp_path)
    runs = [read_run(b, e, run=str(i + 1)) for i, (b, e) in enumerate(files)]
    labels = np.zeros((7, 8, 9), np.int16)
    labels[1:4], labels[4:] = 1, 2
    ep = roi_timeseries(runs, nib.Nifti1Image(labels, runs[0].img.affine), window=40.0, stride=20.0,
                        names={1: "front", 2: "back"}, subject="01")
    assert ep.shape == (2 * ((150 - 20) // 10 + 1), 2, 20)
    assert ep.channels.names == ("front", "back") and ep.channels.types == ("fmri-roi",) * 2
    np.testing.assert_allclose(ep.channels.pos[0] * 1000, [6.0, 10.5, 14.0])  # parcel centre in mm
    assert ep.table["onset"].tolist()[:3] == [0.0, 20.0, 40.0] and ep.sfreq == 0.5
    with pytest.raises(ValueError, match=r"field 'labels_img': expected the grid of .* got shape \(7, 8, 10\)"):
        roi_timeseries(runs, nib.Nifti1Image(np.ones((7, 8, 10), np.int16), runs[0].img.affine), window=40, stride=20)


def test_load_betas_npy_hdf5_nifti(tmp_path):
    rng = np.random.default_rng(0)
    betas = rng.normal(size=(6, 11)).astype(np.float32)
    table = pd.DataFrame({"stimulus": [f"nsd{k}" for k in (3, 1, 3, 2, 1, 0)], "session": "1"})
    np.save(tmp_path / "b.npy", betas)
    with h5py.File(tmp_path / "b.hdf5", "w") as f:
        f["betas"] = betas
    a = load_betas(tmp_path / "b.npy", table)
    b = load_betas(tmp_path / "b.hdf5", table, dataset="betas")
    np.testing.assert_array_equal(a.data[:, :, 0], betas)
    np.testing.assert_array_equal(b.data, a.data)
    vol = rng.normal(size=(3, 4, 5, 6)).astype(np.float32)
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "b.nii.gz")
    c = load_betas(tmp_path / "b.nii.gz", table, mask=nib.Nifti1Image(np.ones((3, 4, 5), np.uint8), np.eye(4)))
    assert c.shape == (6, 60, 1)
    np.testing.assert_allclose(c.data[:, 0, 0], vol[0, 0, 0])
    with pytest.raises(ValueError, match=r"b.hdf5: field 'dataset': expected one of \['betas'\], got 'beta'"):
        load_betas(tmp_path / "b.hdf5", table, dataset="beta")
    with pytest.raises(ValueError, match=r"b.npy: field 'table': expected one row per trial \(6\), got 2"):
        load_betas(tmp_path / "b.npy", table.iloc[:2])


def test_bad_fmri_input(tmp_path):
    files, _, weights = synthetic_bids(tmp_path)
    bold, events = files[0]
    img = nib.load(bold)
    nib.save(img.slicer[..., 0], tmp_path / "3d.nii.gz")
    with pytest.raises(ValueError, match=r"3d.nii.gz: field 'bold': expected a 4D image \(x, y, z, time\), got 3D with shape \(7, 8, 9\)"):
        read_run(tmp_path / "3d.nii.gz")
    no_tr = nib.Nifti1Image(np.asarray(img.dataobj), img.affine)
    no_tr.header.set_zooms((3.0, 3.0, 3.5, 0.0))
    nib.save(no_tr, tmp_path / "notr.nii.gz")
    with pytest.raises(ValueError, match=r"notr.nii.gz: field 'tr': expected a repetition time \(argument, BIDS sidecar RepetitionTime or NIfTI header\), got none"):
        read_run(tmp_path / "notr.nii.gz")
    late = pd.read_csv(events, sep="\t")
    late.loc[3, "onset"] = 299.5
    with pytest.raises(ValueError, match=r"events: event 3 \(onset 299.5 s, duration 1.0 s\) ends after the run \(150 volumes × 2.0 s = 300.0 s\)"):
        read_run(bold, late)
    small = nib.Nifti1Image(np.ones((7, 8, 8), np.uint8), img.affine)
    nib.save(small, tmp_path / "small_mask.nii.gz")
    with pytest.raises(ValueError, match=r"small_mask.nii.gz: field 'mask': expected the grid of .* got shape \(7, 8, 8\).* resample_mask=True"):
        make_masker(tmp_path / "small_mask.nii.gz", img)
    masker = make_masker(tmp_path / "small_mask.nii.gz", img, resample_mask=True)
    assert masker.mask_img_.shape == (7, 8, 9)
    with pytest.raises(FileNotFoundError, match="nope.nii.gz: no such BOLD run"):
        read_run(tmp_path / "nope.nii.gz")
    with pytest.raises(ValueError, match=r"field 'method': expected 'lss', 'lsa' or 'tr_average', got 'glm'"):
        trial_responses([read_run(bold, events)], method="glm")
    with pytest.raises(ValueError, match=r"field 'events': expected trial events for single-trial responses, got none"):
        trial_responses([read_run(bold)])


@pytest.mark.slow
@pytest.mark.realdata
def test_haxby_slice_per_volume_decoding(shared_data):
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.svm import LinearSVC

    d = shared_data / "haxby2001_slice" / "tutorial_slice"
    attrs = np.loadtxt(d / "attributes_literal.txt", dtype=str)
    ep = read_volumes(d / "bold.nii.gz", d / "mask.nii.gz", labels=attrs[:, 0], runs=attrs[:, 1], subject="1")
    assert ep.shape == (864, 530, 1) and ep.sfreq == 1 / 2.5
    assert ep.table["label"].value_counts().to_dict() == {c: 108 for c in
                                                          ("scissors", "face", "cat", "shoe", "house", "scrambledpix",
                                                           "bottle", "chair")}
    assert ep.table["run"].nunique() == 12
    acc = cross_val_score(LinearSVC(C=0.01), ep.data[:, :, 0], ep.table["label"], groups=ep.table["run"],
                          cv=LeaveOneGroupOut()).mean()
    print(f"\nHaxby slice, 8 categories, leave-one-run-out linear SVM: {acc:.3f} (reference 0.645)")
    assert acc >= 0.60


@pytest.mark.realdata
def test_digits69_loads_upright(shared_data):
    ep = load_mat(shared_data / "fmri_digits69" / "digit69_28x28.mat", **DIGITS69)
    assert ep.shape == (100, 3092, 1) and ep.table["split"].value_counts().to_dict() == {"train": 90, "test": 10}
    assert ep.subjects == ["01"] and ep.table["stimulus"].str.match(r"img-[0-9a-f]{12}$").all()  # ids by content
    assert ep.table["label"].value_counts().to_dict() == {"6": 50, "9": 50}
    assert ep.table.query("split == 'test'")["label"].tolist() == ["6"] * 5 + ["9"] * 5
    images = {r.stimulus: r.pixels.reshape(r.height, r.width) for r in ep.stimuli.itertuples()}
    first = images[ep.table["stimulus"].iloc[0]].astype(float)  # a "6" whose stroke starts at the top left (rows 4, columns 9-11)
    assert (first[4, 9:12] > 128).all() and (first.T[4, 9:12] == 0).all()  # the transposed image is blank there
    mean6 = np.mean([images[s] for s in ep.table.query("label == '6'")["stimulus"]], axis=0)
    # a 6's loop is low: upright images have more ink in the bottom half; transposed ones would not
    assert mean6[14:].sum() > 1.3 * mean6[:14].sum() and mean6.T[14:].sum() < 1.1 * mean6.T[:14].sum()


@pytest.mark.realdata
def test_mind3d_sample_with_mask(shared_data):
    d = shared_data / "mind3d_demo"
    files = sorted(f for f in d.glob("*.npy") if f.name != "cmask.npy")
    ep = load_surface(files[:2], mask=d / "cmask.npy")
    n_cortex = int(np.load(d / "cmask.npy").astype(bool).sum())
    assert ep.shape == (2, n_cortex, 10)
    assert ep.table["stimulus"].tolist() == [f.stem for f in files[:2]]
    raw = np.load(files[0])
    np.testing.assert_array_equal(ep.data[0, :, 3], raw[3][np.load(d / "cmask.npy").astype(bool)])
    with pytest.raises(ValueError, match=r"field 'mask': expected frames of the mask's shape \(10, 10\), got \(256, 256\)"):
        load_surface(files[:1], mask=np.ones((10, 10)))


def test_surface_files_that_would_be_read_wrong_are_refused(tmp_path):
    one = tmp_path / "one.npy"
    np.save(one, np.ones((16, 16)))                      # one image without its frame axis: not 16 frames × 16
    with pytest.raises(ValueError, match=r"one.npy: field 'data': expected frames .* got shape \(16, 16\); a 2-D "
                                         r"array is ambiguous"):
        load_surface([one])
    nan = tmp_path / "nan.npy"
    frames = np.ones((3, 4, 4))
    frames[1, 2, 2] = np.nan
    np.save(nan, frames)
    with pytest.raises(ValueError, match=r"nan.npy: field 'data': expected finite values, got 1 NaN/Inf"):
        load_surface([nan])
    ok = tmp_path / "ok.npy"
    np.save(ok, np.ones((3, 4, 4)))
    with pytest.raises(ValueError, match=r"field 'stimulus_ids': expected one id per file \(1\), got 2"):
        load_surface([ok], stimulus_ids=["a", "b"])
    with pytest.raises(ValueError, match=r"field 'mask': expected at least one vertex"):
        load_surface([ok], mask=np.zeros((4, 4)))
    assert load_surface([ok], mask=np.eye(4)).shape == (1, 4, 3)


def test_fmriprep_confounds_are_regressed(tmp_path):
    """A fake fMRIPrep output: motion confounds (24 columns) that explain a drift planted in the signal."""
    files, planted, weights = synthetic_bids(tmp_path)
    img = nib.load(files[0][0])
    prep = tmp_path / "prep"
    prep.mkdir()
    bold = prep / "sub-01_task-img_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
    rng = np.random.default_rng(4)
    motion = rng.normal(size=(150, 6)).cumsum(0)
    data = np.asarray(img.dataobj) + 0.5 * weights[..., None] * motion[:, 0]  # a motion artefact
    nib.save(nib.Nifti1Image(data.astype(np.float32), img.affine), bold)
    bold.with_name(bold.name.replace(".nii.gz", ".json")).write_text(json.dumps({"RepetitionTime": TR}))
    cols = {}
    for k, name in enumerate(["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]):
        d = np.r_[np.nan, np.diff(motion[:, k])]
        cols.update({name: motion[:, k], f"{name}_derivative1": d, f"{name}_power2": motion[:, k] ** 2,
                     f"{name}_derivative1_power2": d ** 2})
    conf_tsv = prep / "sub-01_task-img_run-1_desc-confounds_timeseries.tsv"
    pd.DataFrame(cols).to_csv(conf_tsv, sep="\t", index=False, na_rep="n/a")
    conf_tsv.with_suffix(".json").write_text("{}")
    run = read_run(bold, files[0][1], confounds_strategy=["motion"])
    assert run.confounds.shape == (150, 24)
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), img.affine)
    with_conf = trial_responses([run], mask, method="lsa").data[:, :, 0].mean(1)
    without = trial_responses([read_run(bold, files[0][1])], mask, method="lsa").data[:, :, 0].mean(1)
    truth = planted[:12]
    assert np.corrcoef(with_conf, truth)[0, 1] > np.corrcoef(without, truth)[0, 1]
    assert np.corrcoef(with_conf, truth)[0, 1] >= 0.9


def test_gifti_surface_frames(tmp_path):
    from nibabel.gifti import GiftiDataArray, GiftiImage

    rng = np.random.default_rng(5)
    frames = rng.normal(size=(3, 40)).astype(np.float32)
    gii = GiftiImage(darrays=[GiftiDataArray(f) for f in frames])
    nib.save(gii, tmp_path / "trial1.func.gii")
    nib.save(gii, tmp_path / "trial2.func.gii")
    ep = load_surface([tmp_path / "trial1.func.gii", tmp_path / "trial2.func.gii"], stimulus_ids=["cat", "dog"])
    assert ep.shape == (2, 40, 3) and ep.channels.coord_frame == "fsaverage"
    np.testing.assert_array_equal(ep.data[0], frames.T)
    assert ep.table["stimulus"].tolist() == ["cat", "dog"]


def test_lsa_equals_nilearn_first_level_model(tmp_path):
    """Our batched OLS on nilearn's design matrix gives FirstLevelModel's (noise_model='ols') effect sizes."""
    from nilearn.glm.first_level import FirstLevelModel

    files, _, weights = synthetic_bids(tmp_path, n_runs=1, n_trials=6)
    run = read_run(*files[0])
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), run.img.affine)
    ours = trial_responses([run], mask, method="lsa")
    events = run.events.assign(trial_type=[f"trial{k:05d}" for k in range(6)])
    flm = FirstLevelModel(t_r=TR, hrf_model="glover", drift_model="cosine", high_pass=0.01, noise_model="ols",
                          mask_img=mask, signal_scaling=0, minimize_memory=False).fit(run.img, events[["onset", "duration", "trial_type"]])
    masker = make_masker(mask, run.img)
    for k in (0, 3, 5):
        ref = np.ravel(masker.transform(flm.compute_contrast(f"trial{k:05d}", output_type="effect_size")))
        np.testing.assert_allclose(ours.data[k, :, 0], ref, rtol=1e-4, atol=1e-6)


def test_pool_rois_averages_voxels_per_parcel(tmp_path):
    files, _, weights = synthetic_bids(tmp_path, n_runs=1)
    run = read_run(*files[0])
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), run.img.affine)
    ep = trial_responses([run], mask, method="lsa")
    labels = np.zeros((7, 8, 9), np.int16)
    labels[:4], labels[4:] = 3, 5
    rois = pool_rois(ep, nib.Nifti1Image(labels, run.img.affine), names={3: "a", 5: "b"})
    assert rois.shape == (12, 2, 1) and rois.channels.names == ("a", "b")
    front = np.array([n.startswith(("v1_", "v2_", "v3_")) for n in ep.channels.names])
    np.testing.assert_allclose(rois.data[:, 0, 0], ep.data[:, front, 0].mean(1), rtol=1e-6)
    with pytest.raises(ValueError, match=r"field 'labels_img': expected the epochs' grid \(shape \[7, 8, 9\]\), got shape \[7, 8, 8\]"):
        pool_rois(ep, nib.Nifti1Image(np.ones((7, 8, 8), np.int16), run.img.affine))


def test_to_nifti_after_concatenating_runs_and_on_non_voxel_epochs(tmp_path):
    from neurodecode import EpochSet, concatenate

    files, _, weights = synthetic_bids(tmp_path)
    mask = nib.Nifti1Image((weights > 0).astype(np.uint8), nib.load(files[0][0]).affine)
    per_run = [trial_responses([read_run(b, e, run=str(i))], mask, method="lsa") for i, (b, e) in enumerate(files)]
    both = concatenate(per_run)
    assert both.provenance[0]["step"] == "concatenate"
    assert to_nifti(np.ones(both.n_channels), both).shape == (7, 8, 9)
    with pytest.raises(ValueError, match=r"field 'epochs': expected voxel epochs made by neurodecode.loaders.fmri"):
        to_nifti(np.ones(3), EpochSet.from_array(np.zeros((2, 3, 1)), 1.0, ch_types="fmri-roi"))
    with pytest.raises(ValueError, match=r"field 'values': expected one value per voxel channel"):
        to_nifti(np.ones(3), both)


def planted_hrf_runs(root, delays, n_runs=2, n_trials=30, noise=0.02, seed=4):
    """Fast event-related runs (a trial every ~5 s) on a 4×4×2 grid whose voxels respond with their own HRF
    (``delays``: one peak delay per voxel, in the library's family) and planted trial amplitudes."""
    from nilearn.glm.first_level import compute_regressor

    from neurodecode.loaders.glm import library_hrf

    rng = np.random.default_rng(seed)
    n_vol, shape = 110, (4, 4, 2)
    func = root / "func"
    func.mkdir(parents=True)
    runs, planted = [], []
    for r in range(n_runs):
        onsets = 6.0 + np.arange(n_trials) * 6.0 + rng.uniform(0, 2.0, n_trials)
        amps = rng.uniform(0.2, 2.0, n_trials)
        Y = np.empty(shape + (n_vol,))
        for v, d in enumerate(np.asarray(delays).reshape(-1)):
            reg = [compute_regressor(np.array([[o], [1.0], [1.0]]), library_hrf(d), np.arange(n_vol) * TR)[0][:, 0]
                   for o in onsets]
            Y[np.unravel_index(v, shape)] = 100.0 + amps @ np.array(reg) + noise * rng.normal(size=n_vol)
        nib.save(nib.Nifti1Image(Y.astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0])), func / f"run{r}.nii.gz")
        runs.append(read_run(func / f"run{r}.nii.gz", pd.DataFrame({"onset": onsets, "duration": 1.0,
                                                                     "trial_type": "x"}), tr=TR, run=str(r)))
        planted.append(amps)
    return runs, np.concatenate(planted)


def planted_repeat_runs(root, n_runs=3, n_stimuli=10, repeats=3, noise=0.1, seed=5):
    """Rapid event-related runs (a trial every ~3.5 s, overlapping responses) on a 4×4×2 grid: each stimulus drives
    each voxel with its own planted amplitude, repeated across runs; returns the runs and each trial's amplitudes."""
    from nilearn.glm.first_level import compute_regressor

    rng = np.random.default_rng(seed)
    n_trials, shape = n_stimuli * repeats, (4, 4, 2)
    n_vol = int((6 + n_trials * 3.5 + 20) / TR)
    amps = rng.uniform(0.0, 1.0, size=(n_stimuli, 32))
    func = root / "func"
    func.mkdir(parents=True)
    runs, planted = [], []
    for r in range(n_runs):
        stim = rng.permutation(np.repeat(np.arange(n_stimuli), repeats))
        onsets = 6.0 + np.arange(n_trials) * 3.5 + rng.uniform(0, 0.5, n_trials)
        reg = np.array([compute_regressor(np.array([[o], [1.0], [1.0]]), "glover", np.arange(n_vol) * TR)[0][:, 0]
                        for o in onsets])
        Y = 100.0 + (amps[stim].T @ reg) + noise * rng.normal(size=(32, n_vol))
        nib.save(nib.Nifti1Image(Y.reshape(shape + (n_vol,)).astype(np.float32), np.diag([3.0, 3.0, 3.0, 1.0])),
                 func / f"run{r}.nii.gz")
        events = pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": "x", "stimulus": [f"s{k}" for k in stim]})
        runs.append(read_run(func / f"run{r}.nii.gz", events, tr=TR, run=str(r)))
        planted.append(amps[stim])
    return runs, np.concatenate(planted)


def test_fracridge_shrinks_single_trial_betas_towards_their_repeats(tmp_path):
    """GLMsingle's shrinkage on rapid overlapping trials: fractional-ridge betas with a fraction per voxel chosen
    by leave-one-run-out recover the planted amplitudes better than the LSA betas; fraction 1 is exactly LSA; the
    shrinkage is fracridge's (the package, to rounding, when installed)."""
    from neurodecode.loaders.glm import frac_ridge

    runs, planted = planted_repeat_runs(tmp_path)
    mask = nib.Nifti1Image(np.ones((4, 4, 2), np.uint8), runs[0].img.affine)
    lsa = trial_responses(runs, mask, method="lsa")
    frac = trial_responses(runs, mask, method="lsa", fracridge=np.linspace(0.05, 1.0, 20))

    def recovery(ep):
        return np.array([np.corrcoef(ep.data[:, v, 0], planted[:, v])[0, 1] for v in range(ep.n_channels)])

    r_lsa, r_frac = recovery(lsa), recovery(frac)
    chosen = np.asarray(frac.provenance[-1]["fraction_chosen"])
    print(f"\nrapid design: single-trial amplitude recovery (mean r over voxels) LSA {r_lsa.mean():.3f}, fracridge "
          f"{r_frac.mean():.3f}; median fraction {np.median(chosen):.2f}")
    assert r_frac.mean() > r_lsa.mean() + 0.05 and (r_frac > r_lsa).mean() >= 0.8 and np.median(chosen) < 1
    both = trial_responses(runs[:2], mask, method="lsa", hrf_library=[5, 6, 7], fracridge=[0.5])
    assert {"hrf_chosen", "fraction_chosen"} <= set(both.provenance[-1]) and both.shape == (60, 32, 1)
    ols_only = trial_responses(runs, mask, method="lsa", fracridge=[1.0])
    np.testing.assert_allclose(ols_only.data, lsa.data, atol=1e-8)        # Frisch–Waugh–Lovell: fraction 1 is LSA
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 12)), rng.normal(size=(40, 6))
    coef, alphas = frac_ridge(X, Y, [0.2, 0.5, 1.0])
    ols = np.linalg.lstsq(X, Y, rcond=None)[0]
    np.testing.assert_allclose(np.linalg.norm(coef, axis=1) / np.linalg.norm(ols, axis=0),
                               np.repeat([[0.2], [0.5], [1.0]], 6, axis=1), atol=0.01)
    ridge = np.linalg.solve(X.T @ X + alphas[0, 2] * np.eye(12), X.T @ Y[:, 2])
    np.testing.assert_allclose(coef[0, :, 2], ridge, atol=1e-10)          # each solution is a ridge solution
    try:
        from fracridge import fracridge
    except ImportError:
        pass
    else:
        theirs, their_alphas = fracridge(X, Y, [0.2, 0.5, 1.0], jit=False)
        np.testing.assert_allclose(coef, np.moveaxis(theirs, 1, 0), atol=1e-10)
    with pytest.raises(ValueError, match=r"field 'fracridge': expected method='lsa'"):
        trial_responses(runs, mask, method="lss", fracridge=[0.5])
    with pytest.raises(ValueError, match=r"field 'fracridge': expected at least 2 runs"):
        trial_responses(runs[:1], mask, method="lsa", fracridge=[0.5])
    with pytest.raises(ValueError, match=r"field 'fracridge': expected increasing fractions in \(0, 1\]"):
        frac_ridge(X, Y, [0.5, 0.2])
    unique = [read_run(r.img, r.events.assign(stimulus=[f"r{i}_{k}" for k in range(len(r.events))]), tr=TR,
                       run=str(i)) for i, r in enumerate(runs)]
    with pytest.raises(ValueError, match=r"field 'fracridge': expected stimuli repeated across runs"):
        trial_responses(unique, mask, method="lsa", fracridge=[0.5])


@pytest.mark.slow
def test_hrf_library_recovers_planted_hrfs_better_than_the_canonical_one(tmp_path):
    """Half the voxels peak early (delay 4.5), half late (8.5), between the library's points: per-voxel HRFs from
    the library recover the planted amplitudes better than the canonical HRF, and pick the nearest delays."""
    truth = np.repeat([4.5, 8.5], 16)
    runs, planted = planted_hrf_runs(tmp_path, truth)
    mask = nib.Nifti1Image(np.ones((4, 4, 2), np.uint8), runs[0].img.affine)
    canonical = trial_responses(runs, mask, method="lsa", hrf_model="spm")
    library = trial_responses(runs, mask, method="lsa", hrf_library=[3, 4, 5, 6, 7, 8, 9, 10])

    def recovery(ep):
        return np.array([np.corrcoef(ep.data[:, v, 0], planted)[0, 1] for v in range(ep.n_channels)])

    r_can, r_lib = recovery(canonical), recovery(library)
    print(f"\nplanted HRFs: amplitude recovery (mean r over voxels) canonical {r_can.mean():.3f}, "
          f"library {r_lib.mean():.3f}")
    assert r_lib.mean() > r_can.mean() + 0.05 and (r_lib > r_can).mean() >= 0.9
    step = library.provenance[-1]
    chosen = np.asarray(step["hrf_chosen"])
    assert step["hrf_library"] == [3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert (np.abs(chosen - truth) <= 1.0).mean() >= 0.9
    with pytest.raises(ValueError, match=r"field 'hrf_library': expected method='lsa'"):
        trial_responses(runs, mask, method="lss", hrf_library=[4, 6])
    with pytest.raises(ValueError, match=r"field 'hrf_library': expected peak delays between 2 and 16 s, got 30"):
        trial_responses(runs, mask, method="lsa", hrf_library=[4, 30])
