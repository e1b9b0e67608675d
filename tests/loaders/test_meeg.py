"""EEG/MEG/sEEG loaders: real recordings, synthetic sEEG, BIDS, chunked epoching, harmonising, bad input."""

import hashlib

import mne
import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from neurodecode import Channels, EpochSet, concatenate, load
from neurodecode.core.harmonize import harmonize
from neurodecode.loaders.meeg import (assign_regions, epochs_to_store, load_epochs, make_epochs, read_bids,
                                      read_csv_raw, read_evoked, read_raw)
from neurodecode.loaders.preprocessing import apply_steps, bipolar_pairs, check_steps

MI_STEPS = [{"step": "rename", "preset": "eegbci"}, {"step": "montage", "name": "standard_1005"},
            {"step": "filter", "l_freq": 7.0, "h_freq": 30.0}]


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


# ---- real recordings ----------------------------------------------------------------------------------------


@pytest.mark.realdata
def test_eegmmidb_runs_give_45_epochs_with_positions(shared_data):
    files = [shared_data / "eegmmidb_S001" / f"S001R{r:02d}.edf" for r in (4, 8, 12)]
    before = [sha(f) for f in files]
    sets = []
    for run, f in zip((4, 8, 12), files):
        ep = load_epochs(f, return_report=False, tmin=1.0, tmax=2.0, labels={"T1": "left", "T2": "right"}, steps=MI_STEPS,
                                 subject="S001", session="1", run=str(run))
        assert ep.drop_report.n_dropped == 0
        sets.append(ep)
    ep = concatenate(sets)
    assert ep.shape == (45, 64, 161) and ep.sfreq == 160.0
    assert ep.table["label"].value_counts().to_dict() == {"left": 23, "right": 22}
    assert ep.channels.coord_frame == "head" and np.isfinite(ep.channels.pos).all()
    assert ep.channels.names[:3] == ("FC5", "FC3", "FC1")
    prov = ep.provenance[0]
    assert prov["step"] == "concatenate" and [s["file"] for s in [src[0] for src in prov["sources"]]] == \
        ["S001R04.edf", "S001R08.edf", "S001R12.edf"]
    assert [s["step"] for s in prov["processing"]] == ["read", "rename", "montage", "filter", "epochs"]
    assert [sha(f) for f in files] == before  # sources are never modified


@pytest.mark.realdata
def test_muse_n170_subject1_counts(shared_data):
    """1,174 marker events in the 6 runs; 1-30 Hz, -0.1..0.8 s, 100 µV → 1,133 epochs (567 house / 566 face),
    the count of the data README's sanity run."""
    files = sorted((shared_data / "muse_eeg" / "N170" / "subject1").glob("*/*.csv"))
    assert len(files) == 6
    kept, events, labels = 0, 0, {}
    for f in files:
        ep = load_epochs(f, return_report=False, tmin=-0.1, tmax=0.8, labels={"1": "house", "2": "face"},
                                 csv={"exclude": ["Right AUX"], "sfreq": 256.0},
                                 steps=[{"step": "filter", "l_freq": 1.0, "h_freq": 30.0}], reject={"eeg": 100e-6},
                                 subject="1", session="1")
        assert ep.channels.names == ("TP9", "AF7", "AF8", "TP10") and ep.n_times == 232  # -26..205 samples at 256 Hz
        rep = ep.drop_report
        assert set(rep.events.loc[~rep.events["kept"], "reason"].str.startswith("peak-to-peak above eeg"))\
            <= {True}
        kept += ep.drop_report.n_kept
        events += ep.drop_report.n_kept + ep.drop_report.n_dropped
        for k, v in ep.table["label"].value_counts().items():
            labels[k] = labels.get(k, 0) + int(v)
    assert events == 1174
    assert kept == 1133 and labels == {"house": 567, "face": 566}


@pytest.mark.realdata
def test_muse_csv_reader_details(shared_data):
    f = sorted((shared_data / "muse_eeg" / "N170" / "subject1").glob("*/*.csv"))[0]
    raw = read_csv_raw(f)  # rate from the timestamps
    assert raw.info["sfreq"] == pytest.approx(256.0, rel=1e-3)
    assert raw.ch_names == ["TP9", "AF7", "AF8", "TP10", "Right AUX"]
    assert sorted(set(raw.annotations.description)) == ["1", "2"] and len(raw.annotations) == 197
    first = pd.read_csv(f).iloc[0]
    np.testing.assert_allclose(raw.get_data()[0, 0], first["TP9"] * 1e-6)  # µV → V
    assert raw.filenames[0] == f


@pytest.mark.realdata
def test_eeglab_events(shared_data):
    ep = load_epochs(shared_data / "mne_small" / "test_raw.set", return_report=False, tmin=-0.2, tmax=0.5, subject="eeglab")
    assert ep.table["label"].value_counts().to_dict() == {"square": 80, "rt": 74}
    assert ep.drop_report.n_dropped == 0 and ep.shape == (154, 32, 91)


@pytest.mark.realdata
def test_meg_eeg_evoked_keeps_types_and_positions(shared_data):
    ep = read_evoked(shared_data / "mne_small" / "test-ave.fif.gz", subject="sample")
    types = pd.Series(ep.channels.types).value_counts().to_dict()
    assert types == {"meg-grad": 204, "meg-mag": 102, "eeg": 60}
    assert ep.table["label"].tolist() == ["Left Auditory", "Right Auditory", "Left visual", "Right visual"]
    assert ep.channels.coord_frame == "head" and np.isfinite(ep.channels.pos).all()
    assert ep.n_epochs == 4 and ep.table["nave"].min() >= 1


@pytest.mark.realdata
def test_bids_round_trip(shared_data, tmp_path):
    import mne_bids

    raw = mne.io.read_raw_edf(shared_data / "eegmmidb_S001" / "S001R04.edf", verbose="error")
    mne.datasets.eegbci.standardize(raw)
    raw.set_montage("standard_1005" if "standard_1005" in mne.channels.get_builtin_montages() else "colin27_1005",
                    verbose="error")
    bp = mne_bids.BIDSPath(subject="001", session="01", task="imagery", run="04", datatype="eeg", root=tmp_path)
    mne_bids.write_raw_bids(raw, bp, verbose="error", overwrite=True)
    ev = pd.read_csv(bp.copy().update(suffix="events", extension=".tsv").fpath, sep="\t")
    assert {"onset", "duration", "trial_type", "value"} <= set(ev.columns)
    with pytest.raises(ValueError, match=r"run-04_eeg.edf: expected a readable BIDS recording, got an error from mne-bids: Channel mismatch"):
        read_bids(tmp_path, return_report=False, subject="001", session="01", task="imagery", run="04", tmin=1.0, tmax=2.0)
    # the EDF keeps BCI2000 names ("Fc5."), channels.tsv has the standard ones: take channels.tsv's
    ep = read_bids(tmp_path, return_report=False, subject="001", session="01", task="imagery", run="04", on_ch_mismatch="rename",
                           tmin=1.0, tmax=2.0, labels={"T1": "left", "T2": "right"})
    assert ep.n_epochs == 15 and ep.drop_report.n_dropped == 0
    t = ep.table
    assert (t["subject"] == "001").all() and (t["session"] == "01").all() and (t["run"] == "04").all()
    assert (t["task"] == "imagery").all() and "value" in t.columns and "duration" in t.columns
    assert np.isfinite(ep.channels.pos).all()  # from *_electrodes.tsv
    with pytest.raises(FileNotFoundError, match=r"no BIDS recording for subject='002'"):
        read_bids(tmp_path, return_report=False, subject="002", task="imagery", tmin=0, tmax=1)
    # a channels.tsv naming one channel twice: mne-bids would rename them FC5-0 / FC5-1 without a word
    tsv = bp.copy().update(suffix="channels", extension=".tsv").fpath
    channels = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    channels.loc[1, "name"] = channels.loc[0, "name"]
    channels.to_csv(tsv, sep="\t", index=False)
    with pytest.raises(ValueError, match=rf"channels.tsv: field 'name': expected unique channel names, got "
                                         rf"duplicates \['{channels.loc[0, 'name']}'\]"):
        read_bids(tmp_path, return_report=False, subject="001", session="01", task="imagery", run="04",
                  on_ch_mismatch="rename", tmin=1.0, tmax=2.0)


@pytest.mark.realdata
def test_chunked_epoching_equals_whole_recording(shared_data, tmp_path):
    f = shared_data / "eegmmidb_S001" / "S001R04.edf"
    whole = load_epochs(f, return_report=False, tmin=1.0, tmax=2.0, labels={"T1": "left", "T2": "right"}, steps=MI_STEPS)
    report = epochs_to_store(f, tmp_path / "r04.h5", tmin=1.0, tmax=2.0, labels={"T1": "left", "T2": "right"},
                             steps=MI_STEPS, events_per_chunk=4, pad=10.0, progress=False)
    stored = load(tmp_path / "r04.h5")
    assert report.n_kept == 15 and stored.shape == whole.shape
    np.testing.assert_allclose(stored.data, whole.data, atol=1e-9, rtol=1e-4)
    np.testing.assert_allclose(stored.table["onset"], whole.table["onset"])
    assert stored.table["label"].tolist() == whole.table["label"].tolist()
    # one event per chunk: every chunk holds only one of the two labels
    one = epochs_to_store(f, tmp_path / "one.h5", tmin=1.0, tmax=2.0, labels={"T1": "left", "T2": "right"},
                          steps=MI_STEPS, events_per_chunk=1, progress=False)
    assert one.n_kept == 15 and np.allclose(load(tmp_path / "one.h5").data, whole.data, atol=1e-9, rtol=1e-4)
    with pytest.raises(ValueError, match=r"S001R04.edf: field 'labels': expected events present in the recording .* got absent \['T7'\]"):
        epochs_to_store(f, tmp_path / "bad.h5", tmin=1.0, tmax=2.0, labels={"T7": "x"}, progress=False)
    assert not (tmp_path / "bad.h5").exists()


@pytest.mark.realdata
def test_truncated_recording_is_named(shared_data, tmp_path):
    bad = tmp_path / "cut.edf"
    bad.write_bytes((shared_data / "eegmmidb_S001" / "S001R04.edf").read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cut.edf: field 'header bytes': expected a header of 16896 bytes, got 5000: "
                                         r"the file ends inside its header \(truncated\)"):
        read_raw(bad, preload=True)


@pytest.mark.realdata
def test_events_absent_and_window_outside(shared_data):
    f = shared_data / "eegmmidb_S001" / "S001R04.edf"
    with pytest.raises(ValueError, match=r"S001R04.edf: field 'labels': expected events present in the recording \['T0', 'T2', 'T1'\], got absent \['T9'\]"):
        load_epochs(f, return_report=False, tmin=0, tmax=1, labels={"T9": "x"})
    with pytest.raises(ValueError, match=r"S001R04.edf: field 'tmin'/'tmax': expected windows inside the recording .* none inside"):
        load_epochs(f, return_report=False, tmin=200.0, tmax=201.0)
    ep = load_epochs(f, return_report=False, tmin=-1.0, tmax=4.5, labels=["T0"])  # the first and last rest windows stick out
    rep = ep.drop_report
    assert rep.n_dropped >= 1 and set(rep.events.loc[~rep.events["kept"], "reason"]) == \
        {"window outside the recording"}
    assert "dropped" in str(ep.drop_report)


# ---- synthetic recordings ------------------------------------------------------------------------------------


def seeg_raw():
    """Two shafts (LA1-4 in the left amygdala region, RH1-3 in the right hippocampus region), 1 kHz, 20 s."""
    names = ["LA1", "LA2", "LA3", "LA4", "RH1", "RH2", "RH3"]
    rng = np.random.default_rng(0)
    info = mne.create_info(names, 1000.0, "seeg")
    raw = mne.io.RawArray(rng.normal(scale=20e-6, size=(7, 20000)), info, verbose="error")
    pos = {n: np.array([-0.02 - 0.004 * k, -0.005, -0.015]) for k, n in enumerate(names[:4])}
    pos.update({n: np.array([0.03 + 0.004 * k, -0.02, -0.01]) for k, n in enumerate(names[4:])})
    raw.set_montage(mne.channels.make_dig_montage(pos, coord_frame="mni_tal"), verbose="error")
    raw.set_annotations(mne.Annotations([2.0, 5.0, 8.0, 11.0, 14.0], [0] * 5, ["word/a", "word/b"] * 2 + ["word/a"]))
    return raw, pos


def test_seeg_bipolar_along_shafts_with_midpoint_positions():
    assert bipolar_pairs(["LA1", "LA2", "LA3", "LA5", "RH1", "RH2", "X"]) == (["LA1", "LA2", "RH1"],
                                                                               ["LA2", "LA3", "RH2"])
    raw, pos = seeg_raw()
    out, applied = apply_steps(raw, [{"step": "reference", "kind": "bipolar"}])
    assert out.ch_names == ["LA1-LA2", "LA2-LA3", "LA3-LA4", "RH1-RH2", "RH2-RH3"]
    np.testing.assert_allclose(out.get_data()[0], raw.get_data()[0] - raw.get_data()[1])
    np.testing.assert_allclose(out.info["chs"][0]["loc"][:3], (pos["LA1"] + pos["LA2"]) / 2, atol=1e-9)
    assert applied == [{"step": "reference", "kind": "bipolar"}]


def test_seeg_regions_from_table_and_atlas(tmp_path):
    raw, _ = seeg_raw()
    ep = load_epochs(raw, return_report=False, tmin=-0.5, tmax=1.0, labels={"word/a": "a", "word/b": "b"},
                             steps=[{"step": "reference", "kind": "bipolar"}],
                             regions={"LA1": "amygdala", "LA2": "amygdala", "LA3": "amygdala", "LA4": "amygdala",
                                      "RH1": "hippocampus", "RH2": "hippocampus", "RH3": "hippocampus"})
    assert ep.drop_report.n_kept == 5
    assert ep.channels.regions == ("amygdala",) * 3 + ("hippocampus",) * 2
    assert ep.channels.types == ("seeg",) * 5
    # an MNI label volume, 2 mm voxels: x < 0 → label 1, x > 0 → label 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-90, -126, -72]
    vol = np.zeros((91, 109, 91), np.int16)
    vol[:45] = 1
    vol[46:] = 2
    img = nib.Nifti1Image(vol, affine)
    nib.save(img, tmp_path / "atlas.nii.gz")
    plain = load_epochs(raw, return_report=False, tmin=-0.5, tmax=1.0)
    # MNE keeps montage positions in its head frame (identity when there are no fiducials): say they are MNI
    assert plain.channels.coord_frame == "head"
    with pytest.raises(ValueError, match=r"field 'channels.coord_frame': expected positions in the atlas' world space"):
        assign_regions(plain, atlas=tmp_path / "atlas.nii.gz")
    plain = plain.replace(channels=plain.channels.replace(coord_frame="mni_tal"))
    labelled = assign_regions(plain, atlas=tmp_path / "atlas.nii.gz", atlas_labels={1: "left", 2: "right"})
    assert labelled.channels.regions == ("left",) * 4 + ("right",) * 3
    with pytest.raises(ValueError, match="expected exactly one of 'table' or 'atlas'"):
        assign_regions(plain)


def test_preprocessing_steps_are_checked_and_recorded():
    raw, _ = seeg_raw()
    with pytest.raises(ValueError, match=r"preprocessing step 1 \('filter'\): expected parameters among \['h_freq', 'l_freq', 'method', 'picks'\], got unknown \['hfreq'\]"):
        check_steps([{"step": "pick", "types": ["seeg"]}, {"step": "filter", "hfreq": 30}])
    with pytest.raises(ValueError, match=r"preprocessing step 0 \('ica'\): expected a step among"):
        check_steps([{"step": "ica"}])
    with pytest.raises(ValueError, match=r"field 'kind': expected 'average', 'channels', 'bipolar' or 'laplacian', got 'mastoids'"):
        check_steps([{"step": "reference", "kind": "mastoids"}])
    with pytest.raises(ValueError, match=r"preprocessing step 0 \('bads'\): interpolation is for EEG channels only"):
        apply_steps(raw, [{"step": "bads", "channels": ["LA2"], "action": "interpolate"}])
    out, applied = apply_steps(raw, [{"step": "bads", "channels": ["LA2"]}, {"step": "resample", "sfreq": 250.0},
                                     {"step": "notch", "freqs": [50.0]}])
    assert "LA2" not in out.ch_names and out.info["sfreq"] == 250.0
    assert applied[0] == {"step": "bads", "channels": ["LA2"], "action": "auto", "interpolated": [], "dropped": ["LA2"]}


def test_eeg_bad_channel_is_interpolated_and_laplacian_runs():
    montage = mne.channels.make_standard_montage("standard_1020" if "standard_1020" in
                                                 mne.channels.get_builtin_montages() else "colin27_1020")
    names = ["Fz", "Cz", "Pz", "C3", "C4", "F3", "F4", "P3", "P4", "O1", "O2", "Fp1", "Fp2", "T7", "T8"]
    rng = np.random.default_rng(1)
    common = rng.normal(size=(1, 5000))
    raw = mne.io.RawArray(1e-5 * (common + 0.1 * rng.normal(size=(15, 5000))), mne.create_info(names, 250.0, "eeg"),
                          verbose="error")
    raw.set_montage(montage, verbose="error")
    out, applied = apply_steps(raw, [{"step": "bads", "channels": ["Cz"]}])
    assert out.ch_names == names and applied[0]["interpolated"] == ["Cz"]
    assert np.corrcoef(out.get_data(["Cz"])[0], raw.get_data(["Cz"])[0])[0, 1] > 0.95
    csd, _ = apply_steps(raw, [{"step": "reference", "kind": "laplacian"}])
    assert csd.get_channel_types()[0] == "csd"


def test_events_from_a_table_with_stimulus_ids():
    raw, _ = seeg_raw()
    table = pd.DataFrame({"onset": [3.0, 6.0, 9.5], "description": ["img", "img", "img"],
                          "stim_file": ["cat.png", "dog.png", "cat.png"], "rt": [0.4, 0.5, 0.45]})
    ep, report = make_epochs(raw, tmin=0.0, tmax=0.5, events=table, stimulus="stim_file", subject="p1")
    assert ep.table["stimulus"].tolist() == ["cat.png", "dog.png", "cat.png"]
    assert ep.table["rt"].tolist() == [0.4, 0.5, 0.45] and ep.table["onset"].tolist() == [3.0, 6.0, 9.5]
    np.testing.assert_allclose(ep.data[0], raw.get_data(start=3000, stop=3501).astype(np.float32))
    with pytest.raises(ValueError, match=r"field 'events': expected a table with an 'onset' column"):
        make_epochs(raw, tmin=0, tmax=1, events=table.drop(columns=["onset"]))


def test_amplitude_rejection_report():
    raw, _ = seeg_raw()
    data = raw.get_data()
    data[3, 5000:5100] += 1e-3  # a 1 mV artefact on LA4 in the second epoch
    raw = mne.io.RawArray(data, raw.info, verbose="error").set_annotations(raw.annotations)
    ep, report = make_epochs(raw, tmin=-0.5, tmax=1.0, reject={"seeg": 500e-6})
    assert report.n_dropped == 1 and ep.n_epochs == 4
    row = report.events[~report.events["kept"]].iloc[0]
    assert row["onset"] == 5.0 and row["reason"] == "peak-to-peak above seeg 0.0005 on LA4"
    assert report.summary()["n"].sum() == 5


def test_read_raw_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope.edf: no such recording"):
        read_raw(tmp_path / "nope.edf")
    (tmp_path / "x.xyz").write_text("?")
    with pytest.raises(ValueError, match=r"x.xyz: expected a recording ending in one of .* got '.xyz'"):
        read_raw(tmp_path / "x.xyz")
    (tmp_path / "bad.csv").write_text("t,A,B,Marker\n0,1,2,0\n0.004,1,2,0\n0.5,1,2,1\n0.504,1,2,0\n")
    with pytest.raises(ValueError, match=r"bad.csv: field 't': expected samples on one regular grid at 250.000 Hz .* "
                                         r"samples missing \(a gap\)"):
        read_csv_raw(tmp_path / "bad.csv", time_column="t")
    with pytest.raises(ValueError, match=r"bad.csv: field 'marker_column': expected a column among"):
        read_csv_raw(tmp_path / "bad.csv", time_column="t", marker_column="Trig", sfreq=250.0)


def test_harmonize_rate_and_channels():
    rng = np.random.default_rng(2)
    montage = mne.channels.make_standard_montage("standard_1020" if "standard_1020" in
                                                 mne.channels.get_builtin_montages() else "colin27_1020")
    mpos = montage.get_positions()["ch_pos"]
    names_a = ["Fz", "Cz", "Pz", "C3", "C4", "F3", "F4", "P3", "P4"]
    names_b = ["Fz", "Cz", "Pz", "C3", "C4", "F3", "F4"]

    def make(names, sfreq, subject):
        common = rng.normal(size=(3, 1, int(sfreq)))
        data = 1e-5 * (common + 0.05 * rng.normal(size=(3, len(names), int(sfreq))))
        return EpochSet(data, sfreq, Channels(names, "eeg", np.array([mpos[n] for n in names]), "head"),
                        {"subject": subject})

    a, b = make(names_a, 256.0, "a"), make(names_b, 128.0, "b")
    inter = harmonize([a, b])
    assert [e.sfreq for e in inter] == [128.0, 128.0] and inter[0].n_times == 128
    assert inter[0].channels.names == tuple(names_b) == inter[1].channels.names
    assert inter[0].provenance[-2]["step"] == "resample"
    union = harmonize([a, b], channels="union")
    assert union[1].channels.names == tuple(names_a)
    added = union[1].data[:, -2:]
    assert np.abs(added).min() > 0  # interpolated, never zero-padded
    assert union[1].provenance[-2] == {"step": "interpolate_channels", "channels": ["P3", "P4"],
                                       "method": "spherical spline (mne)"}
    with pytest.raises(ValueError, match=r"field 'sfreq': expected every set at or above the target 200.0 Hz \(no upsampling\), got set 1 \(subject b\) at 128.0 Hz"):
        harmonize([a, b], sfreq=200.0)
    seeg = EpochSet(np.ones((3, 2, 128)), 128.0, Channels(["Fz", "LA1"], ["eeg", "seeg"]), {"subject": "c"})
    with pytest.raises(ValueError, match=r"set 1 \(subject c\): expected every non-EEG channel of the union, got \['LA1'\]|set 0 \(subject b\): expected every non-EEG channel"):
        harmonize([b, seeg], channels="union")
    volts = EpochSet(np.ones((3, 1, 128)), 128.0, Channels(["Fz"], "eeg", units="uV"), {"subject": "d"})
    with pytest.raises(ValueError, match=r"set 1 \(subject d\): channel 'Fz': expected type 'eeg' and unit 'V' as in set 0 \(subject b\), got type 'eeg' and unit 'uV'"):
        harmonize([b, volts])
    renamed = harmonize([b, EpochSet(np.ones((3, 1, 128)), 128.0, Channels(["EEG 001"], "eeg"), {"subject": "e"})],
                        mapping={"EEG 001": "Fz"})
    assert renamed[1].channels.names == ("Fz",) == renamed[0].channels.names
    with pytest.raises(ValueError, match="expected channels shared by every set, got none in common"):
        harmonize([b, EpochSet(np.ones((3, 1, 128)), 128.0, Channels(["Oz"], "eeg"), {"subject": "f"})])


def test_preprocessing_configs_are_valid_steps():
    from omegaconf import OmegaConf

    from neurodecode.loaders.preprocessing import CONF_DIR

    files = sorted(CONF_DIR.glob("*.yaml"))
    assert {f.stem for f in files} >= {"eeg_motor_imagery", "erp_consumer_eeg", "seeg_bipolar", "meg_sensors"}
    for f in files:
        steps = OmegaConf.to_container(OmegaConf.load(f), resolve=True)["steps"]
        assert check_steps(steps) == steps
    raw, _ = seeg_raw()
    steps = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "seeg_bipolar.yaml"))["steps"]
    out, applied = apply_steps(raw, steps)
    assert out.info["sfreq"] == 500.0 and out.ch_names[0] == "LA1-LA2" and len(applied) == 5


def test_events_from_a_stim_channel():
    rng = np.random.default_rng(3)
    data = np.vstack([rng.normal(scale=1e-5, size=(2, 3000)), np.zeros((1, 3000))])
    data[2, [500, 1200, 2100]] = [1, 2, 1]
    raw = mne.io.RawArray(data, mne.create_info(["C3", "C4", "STI"], 500.0, ["eeg", "eeg", "stim"]),
                          verbose="error")
    ep, report = make_epochs(raw, tmin=-0.1, tmax=0.4, events="stim", stim_channel="STI",
                             labels={"1": "left", "2": "right"}, stimulus={"1": "arrow_left", "2": "arrow_right"})
    assert ep.channels.names == ("C3", "C4")
    assert ep.table["label"].tolist() == ["left", "right", "left"]
    assert ep.table["stimulus"].tolist() == ["arrow_left", "arrow_right", "arrow_left"]
    np.testing.assert_allclose(ep.table["onset"], [1.0, 2.4, 4.2])


def test_a_pick_step_keeps_the_stim_channel_for_epoching():
    rng = np.random.default_rng(4)
    data = np.vstack([rng.normal(scale=1e-5, size=(3, 3000)), np.zeros((1, 3000))])
    data[3, [500, 1200, 2100]] = [1, 2, 1]
    raw = mne.io.RawArray(data, mne.create_info(["C3", "C4", "EOG1", "STI"], 500.0, ["eeg", "eeg", "eog", "stim"]),
                          verbose="error")
    picked, applied = apply_steps(raw, [{"step": "pick", "types": ["eeg"]}])
    assert picked.ch_names == ["C3", "C4", "STI"] and applied[0]["step"] == "pick"
    ep, _ = make_epochs(picked, tmin=0.0, tmax=0.2, events="stim", stim_channel="STI", labels={"1": "l", "2": "r"})
    assert ep.channels.names == ("C3", "C4") and ep.table["label"].tolist() == ["l", "r", "l"]


def _one_label_run(path, description, onsets):
    rng = np.random.default_rng(len(str(path)))
    raw = mne.io.RawArray(rng.normal(scale=1e-5, size=(2, 2000)), mne.create_info(["C3", "C4"], 200.0, "eeg"),
                          verbose="error")
    raw.set_annotations(mne.Annotations(onsets, [0.1] * len(onsets), [description] * len(onsets)))
    raw.save(path, verbose="error")
    return path


def test_labels_are_resolved_over_the_whole_set_of_runs(tmp_path):
    """A run that holds one of the labelled markers is fine when another run of the set holds the other; a
    marker in none of the runs is still an error naming it."""
    from neurodecode.loaders.meeg import load_recordings

    runs = [_one_label_run(tmp_path / "r1_raw.fif", "T1", [1.0, 3.0, 5.0]),
            _one_label_run(tmp_path / "r2_raw.fif", "T2", [2.0, 4.0])]
    ep = load_recordings(runs, tmin=0.0, tmax=0.5, labels={"T1": "left", "T2": "right"}, subject="s1")
    assert ep.table["label"].tolist() == ["left"] * 3 + ["right"] * 2
    assert ep.table["run"].tolist() == ["1"] * 3 + ["2"] * 2
    with pytest.raises(ValueError, match=r"field 'labels': expected every labelled event in at least one run, got "
                                         r"\['T3'\] in none"):
        load_recordings(runs, tmin=0.0, tmax=0.5, labels={"T1": "left", "T2": "right", "T3": "rest"})
    with pytest.raises(ValueError, match=r"r2_raw.fif: field 'labels': expected events present .* absent \['T1'\]"):
        load_recordings(runs[1], tmin=0.0, tmax=0.5, labels={"T1": "left", "T2": "right"})   # one run: strict


def test_steps_naming_unknown_channels_are_refused():
    raw, _ = seeg_raw()
    for step in ({"step": "pick", "channels": ["LA9"]}, {"step": "rename", "mapping": {"LA9": "X"}},
                 {"step": "bads", "channels": ["LA9"]}):
        with pytest.raises(ValueError, match=r"preprocessing step 0 \('\w+'\): expected channels of the recording, got unknown \['LA9'\]"):
            apply_steps(raw, [step])


def test_stimulus_files_are_resolved_from_the_table_and_read_as_images(tmp_path):
    from PIL import Image

    from neurodecode.core.stimuli import stimulus_images
    from neurodecode.loaders.meeg import load_recordings

    runs = [_one_label_run(tmp_path / "r1_raw.fif", "T1", [1.0, 3.0]), _one_label_run(tmp_path / "r2_raw.fif", "T2",
                                                                                      [2.0])]
    (tmp_path / "img").mkdir()
    for name, value in (("left", 40), ("right", 200)):
        Image.fromarray(np.full((6, 5), value, np.uint8)).save(tmp_path / "img" / f"{name}.png")
    pd.DataFrame({"stimulus": ["left", "right"], "file": ["img/left.png", "img/right.png"]}).to_csv(
        tmp_path / "stimuli.csv", index=False)
    kw = {"tmin": 0.0, "tmax": 0.5, "labels": {"T1": "left", "T2": "right"}, "stimulus": {"T1": "left", "T2": "right"}}
    ep = load_recordings(runs, stimuli=tmp_path / "stimuli.csv", **kw)
    assert ep.stimuli["file"].tolist() == [str(tmp_path / "img" / "left.png"), str(tmp_path / "img" / "right.png")]
    img = stimulus_images(ep.stimuli, ep.table["stimulus"].tolist())
    assert img.shape == (3, 6, 5, 1) and img[0, 0, 0, 0] == pytest.approx(40 / 255) and img[2].min() == pytest.approx(
        200 / 255)
    pd.DataFrame({"stimulus": ["left", "right"], "file": ["img/left.png", "img/gone.png"]}).to_csv(
        tmp_path / "bad.csv", index=False)
    with pytest.raises(FileNotFoundError, match=r"bad.csv: field 'file': expected stimulus files .* first at row 1: "
                                                r".*gone.png"):
        load_recordings(runs, stimuli=tmp_path / "bad.csv", **kw)
    import trimesh                                     # mesh files (3D heads) resolve the same way
    trimesh.creation.box().export(tmp_path / "img" / "left.obj")
    pd.DataFrame({"stimulus": ["left", "right"], "mesh": ["img/left.obj", "img/right.obj"]}).to_csv(
        tmp_path / "meshes.csv", index=False)
    with pytest.raises(FileNotFoundError, match=r"meshes.csv: field 'mesh': expected stimulus files .* first at row "
                                                r"1: .*right.obj"):
        load_recordings(runs, stimuli=tmp_path / "meshes.csv", **kw)
    trimesh.creation.icosphere().export(tmp_path / "img" / "right.obj")
    assert load_recordings(runs, stimuli=tmp_path / "meshes.csv", **kw).stimuli["mesh"].tolist() == [
        str(tmp_path / "img" / "left.obj"), str(tmp_path / "img" / "right.obj")]
    Image.fromarray(np.zeros((7, 7), np.uint8)).save(tmp_path / "img" / "right.png")
    with pytest.raises(ValueError, match=r"expected images of one size, got 6×5 \(.*left.png\) and 7×7"):
        stimulus_images(ep.stimuli, ["left", "right"])


@pytest.mark.realdata
def test_loaders_return_epochs_carrying_their_drop_report(shared_data, tmp_path):
    """The report travels with the epochs (and their store); the 0.2 pair still comes by default, with a warning."""
    from neurodecode import load, save

    f = shared_data / "eegmmidb_S001" / "S001R04.edf"
    if not f.is_file():
        pytest.skip(f"{f}: the shared EEGMMIDB recording is missing")
    ep = load_epochs(f, return_report=False, tmin=-1.0, tmax=4.5, labels=["T0"])
    assert ep.drop_report.n_dropped >= 1 and ep.drop_report.n_kept == ep.n_epochs
    save(ep, tmp_path / "e.h5")
    assert str(load(tmp_path / "e.h5").drop_report) == str(ep.drop_report)
    with pytest.warns(FutureWarning, match=r"load_epochs returns \(epochs, report\) for one more release; pass "
                                           r"return_report=False"):
        old, report = load_epochs(f, tmin=-1.0, tmax=4.5, labels=["T0"])
    assert old == ep and str(report) == str(ep.drop_report)
    other = load_epochs(shared_data / "eegmmidb_S001" / "S001R08.edf", return_report=False, tmin=-1.0, tmax=4.5,
                        labels=["T0"])
    both = concatenate([ep, other])                      # the reports are per recording: concatenation keeps each
    assert both.drop_report.events.groupby("recording").size().tolist() == [len(ep.drop_report.events),
                                                                             len(other.drop_report.events)]
