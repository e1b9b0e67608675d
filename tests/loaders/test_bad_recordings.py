"""A corpus of damaged recordings, built at test time from copies of ../shared/data and synthetic files: every case
is a clear error naming the file and the field, never a silently shortened, renamed or zero-filled result."""

import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurodecode.loaders.fmri import read_run, read_volumes
from neurodecode.loaders.glm import trial_responses
from neurodecode.loaders.rois import roi_timeseries
from neurodecode.loaders.meeg import epochs_to_store, load_epochs, read_csv_raw, read_raw
from neurodecode.loaders.precomputed import DIGITS69, load_mat

EDF = "eegmmidb_S001/S001R04.edf"


@pytest.fixture
def edf(shared_data, tmp_path):
    """A writable copy of a real EDF+ run and its header fields' offsets (65 signals)."""
    path = tmp_path / "run.edf"
    shutil.copy(shared_data / EDF, path)
    path.chmod(0o644)
    return path


def _patch(path, offset, text, width):
    raw = bytearray(path.read_bytes())
    raw[offset:offset + width] = text.ljust(width).encode("latin-1")
    path.write_bytes(bytes(raw))


# -- EEG / MEG -------------------------------------------------------------------------------------------------------

@pytest.mark.realdata
def test_edf_truncated_inside_its_data_records_is_refused(edf, tmp_path):
    edf.write_bytes(edf.read_bytes()[:1_300_000])          # about half of the 125 one-second records
    with pytest.raises(ValueError, match=r"run.edf: field 'n_records': expected 125 data records of 20640 bytes as the "
                                         r"header says .* the file is truncated"):
        load_epochs(edf, return_report=False, tmin=0.0, tmax=1.0, labels={"T1": "left", "T2": "right"})
    with pytest.raises(ValueError, match="run.edf: field 'n_records'"):
        epochs_to_store(edf, tmp_path / "s.h5", tmin=0.0, tmax=1.0, progress=False)
    assert not (tmp_path / "s.h5").exists()                 # nothing stored from half a recording


@pytest.mark.realdata
def test_edf_with_duplicated_channel_names_is_refused_unless_renaming_is_asked(edf):
    _patch(edf, 256 + 16, "Fc5.", 16)                      # signal 1 gets signal 0's label
    with pytest.raises(ValueError, match=r"run.edf: field 'ch_names': expected unique signal labels, got duplicates "
                                         r"\['Fc5.'\]; .* rename_duplicates=True"):
        read_raw(edf)
    raw = read_raw(edf, rename_duplicates=True)            # asked for: MNE's running numbers, logged
    assert len(set(raw.ch_names)) == 64 and {'Fc5.-0', 'Fc5.-1'} <= set(raw.ch_names)


@pytest.mark.realdata
def test_edf_with_an_implausible_physical_range_is_refused(edf):
    ns = 65
    _patch(edf, 256 + ns * 112 + 3 * 8, "1e30", 8)          # physical maximum of signal 3
    with pytest.raises(ValueError, match=r"run.edf: signal 'Fcz.': field 'physical_min'/'physical_max': expected a "
                                         r"finite, non-empty range within ±1e\+07 uV \(±10 V\), got .* … 1e\+30"):
        read_raw(edf)


@pytest.mark.realdata
def test_edf_with_a_damaged_header_field_is_named(edf):
    _patch(edf, 256 + 65 * 216, "abc", 8)                    # samples per record of signal 0
    with pytest.raises(ValueError, match=r"run.edf: field 'samples per record': expected a number for signal 0, "
                                         r"got 'abc'"):
        read_raw(edf)


@pytest.mark.realdata
def test_fif_truncated_is_refused(shared_data, tmp_path):
    raw = read_raw(shared_data / EDF, preload=True)
    raw.save(tmp_path / "full_raw.fif", verbose="error")
    data = (tmp_path / "full_raw.fif").read_bytes()
    (tmp_path / "cut_raw.fif").write_bytes(data[:len(data) // 2])
    with pytest.raises(ValueError, match=r"cut_raw.fif: field 'data': the FIF file holds invalid tags: truncated or "
                                         r"damaged"):
        read_raw(tmp_path / "cut_raw.fif")


@pytest.mark.realdata
def test_eeglab_fdt_shorter_than_its_set_is_refused(shared_data, tmp_path):
    shutil.copy(shared_data / "mne_small" / "test_raw.set", tmp_path / "test_raw.set")
    (tmp_path / "test_raw.fdt").write_bytes((shared_data / "mne_small" / "test_raw.fdt").read_bytes()[:2_000_000])
    with pytest.raises(ValueError, match=r"test_raw.fdt: field 'data': expected 32 channels × 30504 samples × 4 bytes "
                                         r"= 3904512 bytes as test_raw.set says, got 2000000"):
        read_raw(tmp_path / "test_raw.set")


def _muse(tmp_path, rows=600, seed=0):
    rng = np.random.default_rng(seed)
    t = 1000 + np.arange(rows) / 256.0
    frame = pd.DataFrame({"timestamps": t, **{c: rng.normal(size=rows) * 10 for c in ("TP9", "AF7", "AF8", "TP10")},
                          "Marker0": np.where(np.arange(rows) % 100 == 50, 1, 0)})
    return frame


def test_csv_with_a_text_cell_names_the_column_and_row(tmp_path):
    frame = _muse(tmp_path).astype(object)
    frame.loc[17, "AF8"] = "n/a?"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"bad.csv: field 'AF8': expected numbers, got 'n/a\?' at row 17"):
        read_csv_raw(tmp_path / "bad.csv")
    raw = read_csv_raw(tmp_path / "bad.csv", exclude=["AF8"])             # left out on purpose: the other channels
    assert raw.ch_names == ["TP9", "AF7", "TP10"]


def test_csv_with_every_row_doubled_is_refused(tmp_path):
    frame = _muse(tmp_path)
    pd.concat([frame, frame]).sort_index(kind="stable").to_csv(tmp_path / "twice.csv", index=False)
    with pytest.raises(ValueError, match=r"twice.csv: field 'rows': expected one row per sample, got 600 row\(s\) "
                                         r"identical to the row before, the first at row 1"):
        read_csv_raw(tmp_path / "twice.csv")
    frame.to_csv(tmp_path / "once.csv", index=False)
    assert read_csv_raw(tmp_path / "once.csv").info["sfreq"] == pytest.approx(256.0)


def test_csv_with_duplicate_columns_or_backward_times_is_refused(tmp_path):
    frame = _muse(tmp_path)
    text = frame.to_csv(index=False).replace("AF8", "AF7", 1)
    (tmp_path / "dup.csv").write_text(text)
    with pytest.raises(ValueError, match=r"dup.csv: field 'columns': expected unique column names, got duplicates "
                                         r"\['AF7'\]"):
        read_csv_raw(tmp_path / "dup.csv")
    frame.loc[300, "timestamps"] = frame.loc[299, "timestamps"] - 1.0
    frame.to_csv(tmp_path / "back.csv", index=False)
    with pytest.raises(ValueError, match=r"back.csv: field 'timestamps': expected sample times that never go back by "
                                         r"more than 0.05 s, got .* at row 300"):
        read_csv_raw(tmp_path / "back.csv")


def test_csv_packet_jitter_is_accepted_but_a_gap_is_refused(tmp_path):
    rng = np.random.default_rng(3)
    frame = _muse(tmp_path, rows=256 * 30)
    t = frame["timestamps"].to_numpy().copy()
    late = rng.choice(len(t) - 12, size=40, replace=False)
    for k in late:                                 # packets of 12 samples arriving up to 60 ms late, then on time
        t[k:k + 12] += rng.uniform(0.0, 0.06)
    frame["timestamps"] = np.maximum.accumulate(t) - np.r_[0, (rng.uniform(size=len(t) - 1) < 0.01) * 0.001]
    frame.to_csv(tmp_path / "jitter.csv", index=False)
    raw = read_csv_raw(tmp_path / "jitter.csv")
    assert raw.info["sfreq"] == pytest.approx(256.0, rel=1e-3) and raw.n_times == len(t)
    gap = _muse(tmp_path, rows=256 * 30)
    gap.loc[4000:, "timestamps"] += 100 / 256.0    # 100 samples lost at row 4000: later stamps shifted for good
    gap.to_csv(tmp_path / "gap.csv", index=False)
    with pytest.raises(ValueError, match=r"gap.csv: field 'timestamps': expected samples on one regular grid at "
                                         r"256.0\d* Hz .* samples missing \(a gap\) or a wrong sfreq"):
        read_csv_raw(tmp_path / "gap.csv")
    with pytest.raises(ValueError, match=r"gap.csv: field 'timestamps': expected samples on one regular grid"):
        read_csv_raw(tmp_path / "gap.csv", sfreq=256.0)


# -- fMRI ------------------------------------------------------------------------------------------------------------

def _bold(tmp_path, name="bold.nii.gz", tr=2.0, n=40, seed=0, units="sec"):
    rng = np.random.default_rng(seed)
    data = 100 + rng.normal(size=(7, 8, 9, n)).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([3.0, 3.0, 3.0, 1.0]))
    img.header.set_zooms((3.0, 3.0, 3.0, tr))
    img.header.set_xyzt_units("mm", units)
    nib.save(img, tmp_path / name)
    return tmp_path / name


def _events(n_vol=40, tr=2.0, onsets=(4.0, 20.0, 36.0, 52.0)):
    return pd.DataFrame({"onset": onsets, "duration": 2.0, "trial_type": ["a", "b", "a", "b"]})


def test_a_nan_voxel_is_refused_or_left_out_on_purpose(tmp_path):
    path = _bold(tmp_path)
    img = nib.load(path)
    data = np.asarray(img.dataobj).copy()
    data[3, 4, 5, 17] = np.nan
    nib.save(nib.Nifti1Image(data, img.affine, img.header), tmp_path / "nan.nii.gz")
    mask = nib.Nifti1Image(np.ones((7, 8, 9), np.uint8), img.affine)
    run = read_run(tmp_path / "nan.nii.gz", _events())
    with pytest.raises(ValueError, match=r"nan.nii.gz: field 'data': expected finite BOLD values in the mask, got NaN/Inf "
                                         r"in 1 voxel\(s\), the first at voxel \(3, 4, 5\), volume 17; pass "
                                         r"on_nonfinite='mask'"):
        trial_responses([run], mask, method="lsa")
    masked = trial_responses([run], mask, method="lsa", on_nonfinite="mask")
    assert masked.n_channels == 7 * 8 * 9 - 1 and "v3_4_5" not in masked.channels.names
    assert masked.provenance[-1]["nonfinite_voxels_left_out"] == ["v3_4_5"]
    clean = trial_responses([read_run(path, _events())], mask, method="lsa")
    keep = [clean.channels.names.index(n) for n in masked.channels.names]
    # every other voxel keeps the beta it has without the NaN (nilearn's zero fill would have changed the design's fit)
    np.testing.assert_allclose(masked.data[:, :, 0], clean.data[:, keep, 0], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="nan.nii.gz: field 'data': expected finite BOLD values"):
        read_volumes(tmp_path / "nan.nii.gz", mask, labels=["a"] * 40, runs=["1"] * 40)


def test_a_tr_in_milliseconds_and_runs_of_mixed_tr_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"ms.nii.gz: field 'tr': expected a repetition time in seconds, 0 < TR <= 100, "
                                         r"got 2500.0 from the NIfTI header .* milliseconds labelled as seconds\?"):
        read_run(_bold(tmp_path, "ms.nii.gz", tr=2500.0))
    assert read_run(_bold(tmp_path, "msec.nii.gz", tr=2500.0, units="msec")).tr == 2.5     # declared ms: converted
    a, b = read_run(_bold(tmp_path, "a.nii.gz"), _events()), read_run(_bold(tmp_path, "b.nii.gz", tr=1.5), _events())
    with pytest.raises(ValueError, match=r"b.nii.gz: field 'tr': expected 2.0 s like .*a.nii.gz, got 1.5 s"):
        trial_responses([a, b], method="tr_average")
    labels = nib.Nifti1Image(np.ones((7, 8, 9), np.int16), np.diag([3.0, 3.0, 3.0, 1.0]))
    with pytest.raises(ValueError, match=r"b.nii.gz: field 'tr': expected 2.0 s"):
        roi_timeseries([a, b], labels, window=10, stride=10)


def test_events_outside_the_run_are_refused(tmp_path):
    path = _bold(tmp_path)
    with pytest.raises(ValueError, match=r"bold.nii.gz events: event 0: field 'onset'/'duration': expected an event "
                                         r"inside the run \(onset >= 0 s, duration >= 0 s\), got onset -4.0 s"):
        read_run(path, _events(onsets=(-4.0, 20.0, 36.0, 52.0)))
    with pytest.raises(ValueError, match=r"event 3 .* ends after the run \(40 volumes × 2.0 s = 80.0 s\)"):
        read_run(path, _events(onsets=(4.0, 20.0, 36.0, 79.0)))
    bad = _events().astype(object)
    bad.loc[1, "onset"] = "soon"
    with pytest.raises(ValueError, match=r"field 'onset': expected numbers in seconds, got 'soon' at row 1"):
        read_run(path, bad)


def test_a_run_built_by_hand_gets_the_same_checks(tmp_path):
    from neurodecode.loaders.fmri import Run

    img = nib.load(_bold(tmp_path))
    with pytest.raises(ValueError, match=r"event 3 .* ends after the run \(40 volumes × 2.0 s = 80.0 s\)"):
        Run(img, 2.0, _events(onsets=(4.0, 20.0, 36.0, 79.0)))
    with pytest.raises(ValueError, match=r"field 'tr': expected a repetition time in seconds, 0 < TR <= 100, got "
                                         r"2000.0 from the Run"):
        Run(img, 2000.0, _events())
    with pytest.raises(ValueError, match=r"field 'confounds': expected one row per volume \(40\), got shape \(39, 2\)"):
        Run(img, 2.0, _events(), np.zeros((39, 2)))


def test_confounds_may_start_with_na_but_not_hold_one_later(tmp_path):
    path = _bold(tmp_path)
    conf = np.random.default_rng(0).normal(size=(40, 2))
    conf[0, 1] = np.nan                                     # fMRIPrep's derivative columns start with n/a
    run = read_run(path, _events(), confounds=conf)
    assert run.confounds[0, 1] == 0.0 and np.isfinite(run.confounds).all()
    conf[17, 0] = np.nan
    with pytest.raises(ValueError, match=r"bold.nii.gz: field 'confounds': expected finite values after the first "
                                         r"rows, got nan at volume 17, column 0"):
        read_run(path, _events(), confounds=conf)


def test_a_nan_beta_is_refused_or_left_out_on_purpose(tmp_path):
    from neurodecode.loaders.precomputed import load_betas

    betas = np.random.default_rng(0).normal(size=(6, 10))
    betas[4, 7] = np.nan
    np.save(tmp_path / "betas.npy", betas)
    table = pd.DataFrame({"stimulus": list("abcdef")})
    with pytest.raises(ValueError, match=r"betas.npy: field 'betas': expected finite values, got nan at trial 4, "
                                         r"voxel 7 \(1 voxel\(s\) affected\)"):
        load_betas(tmp_path / "betas.npy", table)
    ep = load_betas(tmp_path / "betas.npy", table, on_nonfinite="mask")
    assert ep.n_channels == 9 and "voxel7" not in ep.channels.names
    np.testing.assert_allclose(ep.data[:, :, 0], np.delete(betas, 7, axis=1), rtol=1e-6)   # float32 storage
    vol = np.random.default_rng(1).normal(size=(2, 2, 2, 6)).astype(np.float32)
    vol[1, 1, 1, 2] = np.inf
    nib.save(nib.Nifti1Image(vol, np.eye(4)), tmp_path / "betas.nii.gz")
    mask = nib.Nifti1Image(np.ones((2, 2, 2), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match=r"betas.nii.gz: field 'data': expected finite BOLD values in the mask"):
        load_betas(tmp_path / "betas.nii.gz", table, mask=mask)
    assert load_betas(tmp_path / "betas.nii.gz", table, mask=mask, on_nonfinite="mask").n_channels == 7


@pytest.mark.realdata
def test_runs_that_do_not_match_name_both_files(shared_data, monkeypatch):
    import neurodecode.loaders.meeg as meeg

    a, b = shared_data / "eegmmidb_S001/S001R04.edf", shared_data / "eegmmidb_S001/S001R08.edf"
    kw = dict(tmin=0.0, tmax=1.0, labels={"T1": "left", "T2": "right"})
    assert sorted(set(meeg.load_recordings([a, b], **kw).table["run"])) == ["1", "2"]
    original = meeg.load_epochs

    def second_run_lost_a_channel(path, **k):
        ep = original(path, **k)
        return ep.pick_channels(ep.channels.names[:-1]) if str(path).endswith("R08.edf") else ep

    monkeypatch.setattr(meeg, "load_epochs", second_run_lost_a_channel)
    with pytest.raises(ValueError, match=r"S001R08.edf: expected a run compatible with .*S001R04.edf \(same channels, "
                                         r"sampling rate, epoch window and processing\), got: .*channel"):
        meeg.load_recordings([a, b], **kw)


def test_a_mat_file_with_more_images_than_trials_is_refused(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    good = {"fmriTrn": rng.normal(size=(6, 10)), "stimTrn": rng.uniform(size=(6, 784)), "labelTrn": [[1]] * 6,
            "fmriTest": rng.normal(size=(2, 10)), "stimTest": rng.uniform(size=(2, 784)), "labelTest": [[2]] * 2}
    savemat(tmp_path / "ok.mat", good)
    ep = load_mat(tmp_path / "ok.mat", **DIGITS69)
    assert ep.n_epochs == 8 and ep.subjects == ["01"] and set(ep.table["label"]) == {"6", "9"}
    savemat(tmp_path / "extra.mat", {**good, "stimTrn": rng.uniform(size=(7, 784))})
    with pytest.raises(ValueError, match=r"extra.mat: field 'stimTrn': expected one image per trial \(6\), got 7"):
        load_mat(tmp_path / "extra.mat", **DIGITS69)
    savemat(tmp_path / "code.mat", {**good, "labelTest": [[3]] * 2})
    with pytest.raises(ValueError, match=r"code.mat: field 'labelTest': expected label codes among \['1', '2'\] "
                                         r"\(label_names\), got \['3'\]; .*data.label_names=null"):
        load_mat(tmp_path / "code.mat", **DIGITS69)
    codes = load_mat(tmp_path / "code.mat", **{**DIGITS69, "label_names": None})      # the fix the error names
    assert set(codes.table.query("split == 'test'")["label"]) == {"3"} and "1" in set(codes.table["label"])
    nan = good["fmriTest"].copy()
    nan[1, 3] = np.nan
    savemat(tmp_path / "nan.mat", {**good, "fmriTest": nan})
    with pytest.raises(ValueError, match=r"nan.mat: field 'fmriTest': expected finite responses .* with 1 NaN/Inf"):
        load_mat(tmp_path / "nan.mat", **DIGITS69)


def test_repeated_images_share_one_stimulus_id(tmp_path):
    from scipy.io import savemat

    rng = np.random.default_rng(1)
    imgs = rng.uniform(size=(3, 784))
    savemat(tmp_path / "rep.mat", {"fmriTrn": rng.normal(size=(6, 10)), "stimTrn": np.concatenate([imgs, imgs]),
                                   "labelTrn": [[1]] * 6, "fmriTest": rng.normal(size=(1, 10)),
                                   "stimTest": imgs[:1], "labelTest": [[1]]})
    ep = load_mat(tmp_path / "rep.mat", **DIGITS69)
    ids = ep.table["stimulus"].tolist()
    assert ids[:3] == ids[3:6] and ids[6] == ids[0] and len(ep.stimuli) == 3   # one row per distinct image
