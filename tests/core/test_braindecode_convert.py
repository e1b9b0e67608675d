"""EpochSet ↔ braindecode windows datasets: a round trip keeps data, channels and table; braindecode's own windows
of a real recording equal neurodecode's epochs of it; what the conversion cannot read faithfully is refused."""

from __future__ import annotations

import numpy as np
import pytest

from neurodecode.core.braindecode_convert import from_braindecode, to_braindecode
from neurodecode.loaders.simulate import simulated_epochs


def _by_recording(ep):
    keys = ep.table[["subject", "session", "run"]].astype(str).agg("/".join, axis=1)
    first = {k: i for i, k in reversed(list(enumerate(keys)))}
    return np.argsort([first[k] for k in keys], kind="stable")


def test_round_trip_keeps_data_channels_and_table():
    ep = simulated_epochs(n_epochs=20, n_channels=4, n_times=64, sfreq=64.0)
    ds = to_braindecode(ep)
    assert [dict(d.description) for d in ds.datasets] == [
        {"subject": s, "session": "1", "run": r} for s in ("sub-01", "sub-02") for r in ("1", "2")]
    X, y, crop = ds[0]
    assert X.shape == (4, 64) and y == 0 and list(crop) == [0, 0, 64]           # class0 → 0, class1 → 1
    assert sorted({int(t) for d in ds.datasets for t in d.y}) == [0, 1]
    back = from_braindecode(ds)
    order = _by_recording(ep)                       # windows grouped by recording, in table order inside each
    np.testing.assert_allclose(back.data, ep.data[order], rtol=1e-6, atol=1e-12)
    assert back.sfreq == ep.sfreq and back.tmin == ep.tmin
    assert list(back.channels.names) == list(ep.channels.names)
    np.testing.assert_allclose(back.channels.pos, ep.channels.pos)
    for col in ("subject", "session", "run", "label", "stimulus", "onset"):
        assert back.table[col].astype(str).tolist() == ep.table[col].iloc[order].astype(str).tolist(), col
    assert back.provenance[-1]["step"] == "concatenate"


def test_targets_follow_the_mapping_and_a_value_without_code_fails():
    ep = simulated_epochs(n_epochs=12, n_channels=3, n_times=32, sfreq=32.0, n_classes=3)
    ds = to_braindecode(ep, mapping={"class0": 2, "class1": 1, "class2": 0})
    assert [int(t) for t in ds.datasets[0].y] == [{"class0": 2, "class1": 1, "class2": 0}[v]
                                                  for v in ds.datasets[0].windows.metadata["label"]]
    with pytest.raises(ValueError, match=r"to_braindecode: field 'mapping': expected an integer code for every value "
                                         r"of table\['label'\], got none for \['class2'\]"):
        to_braindecode(ep, mapping={"class0": 0, "class1": 1})
    with pytest.raises(ValueError, match=r"field 'target': expected a column of the epochs' table"):
        to_braindecode(ep, target="condition")


@pytest.mark.realdata
def test_braindecode_windows_of_a_real_recording_equal_neurodecode_epochs(shared_data):
    """EEGMMIDB S001 run 4: braindecode's create_windows_from_events (1 s after each cue, 336 samples) and
    neurodecode's load_epochs (tmin 1 s, same samples) give the same windows, labels and times."""
    import mne
    from braindecode.datasets import BaseConcatDataset, RawDataset
    from braindecode.preprocessing import create_windows_from_events

    from neurodecode.loaders.meeg import load_epochs

    path = shared_data / "eegmmidb_S001" / "S001R04.edf"
    raw = mne.io.read_raw_edf(path, preload=True, verbose="error")
    recording = BaseConcatDataset([RawDataset(raw, description={"subject": "S001", "session": "1", "run": "4"})])
    windows = create_windows_from_events(recording, trial_start_offset_samples=160, trial_stop_offset_samples=-160,
                                         mapping={"T1": 0, "T2": 1}, preload=True)
    ours = load_epochs(path, return_report=False, tmin=1.0, tmax=1.0 + 335 / 160, labels={"T1": "left",
                                                                                           "T2": "right"})
    got = from_braindecode(windows, labels={0: "left", 1: "right"})
    assert got.data.shape == ours.data.shape == (15, 64, 336)
    np.testing.assert_allclose(got.data, ours.data, rtol=1e-6, atol=1e-12)
    assert got.table["label"].tolist() == ours.table["label"].tolist()
    np.testing.assert_allclose(got.table["onset"], ours.table["onset"] + 1.0, atol=1 / 160)   # window start
    assert got.table[["subject", "run"]].drop_duplicates().values.tolist() == [["S001", "4"]]


def test_what_cannot_be_read_faithfully_is_refused():
    from braindecode.datasets import BaseConcatDataset

    ep = simulated_epochs(n_epochs=8, n_channels=3, n_times=32, sfreq=32.0, n_subjects=1)
    ds = to_braindecode(ep)
    micro = to_braindecode(ep)
    for d in micro.datasets:
        d.windows._data *= 1e6                                   # braindecode's scale(1e6): µV
    with pytest.raises(ValueError, match=r"from_braindecode: datasets\[0\]: field 'windows': expected data in V "
                                         r"\(median \|x\| ≤ 0.01; µV data need scale=1e-6\)"):
        from_braindecode(micro)
    np.testing.assert_allclose(from_braindecode(micro, scale=1e-6).data, from_braindecode(ds).data, rtol=1e-6)
    ds.datasets[0].transform = lambda x: x * 2
    with pytest.raises(ValueError, match=r"datasets\[0\]: field 'transform': expected no per-window transform"):
        from_braindecode(ds)
    other = to_braindecode(simulated_epochs(n_epochs=4, n_channels=3, n_times=16, sfreq=32.0, n_subjects=1))
    with pytest.raises(ValueError, match=r"from_braindecode: field 'datasets\[1\]': expected windows like the first "
                                         r"dataset's .*n_times differs \(32 vs 16\)"):
        from_braindecode(BaseConcatDataset([to_braindecode(ep).datasets[0], other.datasets[0]]))
    with pytest.raises(TypeError, match=r"field 'datasets': expected braindecode WindowsDataset or "
                                        r"EEGWindowsDataset"):
        from_braindecode(np.zeros(3))
