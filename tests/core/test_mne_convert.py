"""Conversion to and from MNE, on synthetic epochs and on real recordings."""

import numpy as np
import pandas as pd
import pytest

from neurodecode import EpochSet, from_mne, load, save, to_mne


def test_round_trip_through_mne(epochs):
    m = to_mne(epochs)
    assert m.ch_names == list(epochs.channels.names)
    assert m.tmin == pytest.approx(epochs.tmin)
    np.testing.assert_array_equal(m.get_data(), epochs.data.astype(np.float64))
    back = from_mne(m)
    assert back.data.tobytes() == epochs.data.tobytes()
    assert back.channels == epochs.channels
    pd.testing.assert_frame_equal(back.table[epochs.table.columns], epochs.table)
    assert back.table["event_code"].tolist() == [m.event_id[lab] for lab in epochs.table["label"]]


def test_to_mne_of_several_runs_gives_unique_event_samples(epochs):
    """Runs concatenated share onset times; MNE needs one sample per epoch: each run is shifted past the last."""
    from neurodecode.core.epochs import concatenate

    two = concatenate([epochs, epochs.replace(data=epochs.data * 2, table=epochs.table.assign(run="3"))])  # same onsets
    m = to_mne(two)
    samples = m.events[:, 0]
    assert len(np.unique(samples)) == len(two)
    first = samples[:len(epochs)]
    np.testing.assert_array_equal(first, np.round(epochs.table["onset"] * epochs.sfreq))  # run order kept
    np.testing.assert_array_equal(samples[len(epochs):] - samples[len(epochs)], first - first[0])
    assert samples[len(epochs)] > first.max() + epochs.n_times
    pd.testing.assert_series_equal(m.metadata["onset"].reset_index(drop=True), two.table["onset"].reset_index(drop=True))
    np.testing.assert_array_equal(m.get_data(), two.data.astype(np.float64))
    with pytest.raises(ValueError, match=r"field 'table\['onset'\]': expected distinct onsets within each run"):
        to_mne(two.replace(table=two.table.assign(onset=0.0)))


def test_to_mne_warns_when_mne_moves_tmin(epochs):
    with pytest.warns(UserWarning, match=r"tmin = -0.1 s is not on the sample grid of 128.0 Hz; MNE moves it to -0.1015625 s"):
        m = to_mne(epochs.replace(tmin=-0.1))
    assert m.tmin == -0.1015625


def test_to_mne_refuses_fmri_channels():
    ep = EpochSet.from_array(np.zeros((2, 3, 1)), 0.5, ch_types="fmri-voxel")
    with pytest.raises(ValueError, match=r"field 'channels.types': expected types with an MNE equivalent .* got \['fmri-voxel'\]"):
        to_mne(ep)


def test_from_mne_refuses_unsupported_channel_types():
    import mne

    info = mne.create_info(["C3", "EOG1", "STI"], 100.0, ["eeg", "eog", "stim"])
    m = mne.EpochsArray(np.zeros((2, 3, 5)), info, verbose="error")
    with pytest.raises(ValueError, match=r"channel types among .* got \['eog', 'stim'\] \(channels \['EOG1', 'STI'\]\); pick the data channels first"):
        from_mne(m)
    assert from_mne(m.copy().pick(["eeg"])).channels.names == ("C3",)


@pytest.mark.realdata
def test_eeglab_recording_round_trip(shared_data, tmp_path):
    import mne

    raw = mne.io.read_raw_eeglab(shared_data / "mne_small" / "test_raw.set", preload=True, verbose="error")
    events, event_id = mne.events_from_annotations(raw, verbose="error")
    mne_epochs = mne.Epochs(raw, events, event_id, tmin=-0.2, tmax=0.5, baseline=None, preload=True, verbose="error")
    ep = from_mne(mne_epochs, subject="eeglab", run="1")
    assert ep.shape == (154, 32, 91) and ep.sfreq == 128.0
    assert ep.table["label"].value_counts().to_dict() == {"square": 80, "rt": 74}
    np.testing.assert_allclose(ep.table["onset"], events[:, 0] / 128.0)
    np.testing.assert_array_equal(ep.data, mne_epochs.get_data().astype(np.float32))
    # through the store and back into MNE: same data (to float32 precision), names, events and metadata
    save(ep, tmp_path / "eeglab.h5")
    m = to_mne(load(tmp_path / "eeglab.h5"))
    np.testing.assert_array_equal(m.get_data(), ep.data.astype(np.float64))
    np.testing.assert_allclose(m.get_data(), mne_epochs.get_data(), rtol=1e-6, atol=1e-12)
    assert m.ch_names == mne_epochs.ch_names and m.event_id == mne_epochs.event_id
    np.testing.assert_array_equal(m.events[:, 2], mne_epochs.events[:, 2])
    np.testing.assert_array_equal(m.events[:, 0], mne_epochs.events[:, 0])
    assert from_mne(m).table[ep.table.columns].equals(ep.table)


@pytest.mark.realdata
def test_meg_eeg_positions_in_one_frame(shared_data):
    """MNE sample evoked (306 MEG + 60 EEG): MEG sensor positions are moved into the head frame."""
    import mne
    from mne.transforms import apply_trans

    evokeds = mne.read_evokeds(shared_data / "mne_small" / "test-ave.fif.gz", verbose="error")
    data = np.stack([e.data for e in evokeds])
    m = mne.EpochsArray(data, evokeds[0].info, tmin=evokeds[0].tmin, verbose="error").pick(["meg", "eeg"])
    ep = from_mne(m, subject="sample")
    types = np.array(ep.channels.types)
    assert {t: int((types == t).sum()) for t in set(types)} == {"meg-grad": 204, "meg-mag": 102, "eeg": 60}
    assert ep.channels.coord_frame == "head"
    assert np.isfinite(ep.channels.pos).all()
    mag = int(np.flatnonzero(types == "meg-mag")[0])
    expected = apply_trans(m.info["dev_head_t"], m.info["chs"][mag]["loc"][:3])
    np.testing.assert_allclose(ep.channels.pos[mag], expected)
    eeg = int(np.flatnonzero(types == "eeg")[0])
    np.testing.assert_allclose(ep.channels.pos[eeg], m.info["chs"][eeg]["loc"][:3])
    assert ep.channels.units[mag] == "T" and ep.channels.units[0] == "T/m"
    assert set(ep.channels.bads) == set(m.info["bads"]) & set(m.ch_names)
    back = to_mne(ep)
    assert back.info["bads"] == list(ep.channels.bads)
    np.testing.assert_array_equal(back.get_data(), ep.data.astype(np.float64))


def test_label_from_metadata_column():
    import mne

    info = mne.create_info(["a", "b"], 50.0, "eeg")
    md = pd.DataFrame({"category": ["cat", "dog", "cat"], "stimulus": ["s1", "s2", "s1"]})
    m = mne.EpochsArray(np.zeros((3, 2, 4)), info, metadata=md, verbose="error")
    ep = from_mne(m, label="category", subject="s")
    assert ep.table["label"].tolist() == ["cat", "dog", "cat"]
    assert ep.table["stimulus"].tolist() == ["s1", "s2", "s1"]
    with pytest.raises(ValueError, match=r"field 'label': expected 'event', None or a metadata column"):
        from_mne(m, label="nope")
