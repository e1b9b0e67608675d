"""The common epoch format: validation errors, selection, concatenation, collections."""

import numpy as np
import pandas as pd
import pytest
from conftest import make_epochs

from neurodecode import TABLE_COLUMNS, Channels, EpochCollection, EpochSet, concatenate, save


def test_shapes_times_and_standard_columns(epochs):
    assert epochs.shape == (7, 5, 11)
    assert epochs.data.dtype == np.float32
    assert list(epochs.table.columns[: len(TABLE_COLUMNS)]) == list(TABLE_COLUMNS)
    np.testing.assert_allclose(epochs.times, -0.125 + np.arange(11) / 128.0)
    assert epochs.subjects == ["sub-01"]
    with pytest.raises(ValueError, match="read-only"):
        epochs.data[0, 0, 0] = 1.0


def test_missing_standard_columns_are_added_and_extra_kept():
    ep = EpochSet.from_array(np.zeros((3, 2, 4)), 10.0, ["a", "b"], table={"rt": [0.1, 0.2, 0.3]}, subject="s9")
    assert list(ep.table.columns) == list(TABLE_COLUMNS) + ["rt"]
    assert ep.table["subject"].tolist() == ["s9"] * 3
    assert ep.table["session"].isna().all() and ep.table["onset"].isna().all()
    assert ep.data.dtype == np.float32  # float64 input stored as float32


def test_fmri_shapes_are_plain_epochs():
    betas = EpochSet.from_array(np.ones((6, 40, 1)), 1 / 1.6, ch_types="fmri-voxel", ch_pos=np.zeros((40, 3)),
                                coord_frame="mni_tal")
    assert betas.shape == (6, 40, 1) and betas.channels.units == ("a.u.",) * 40
    rois = EpochSet.from_array(np.ones((3, 7, 20)), 1 / 2.0, ch_types="fmri-roi")
    assert rois.n_times == 20


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"data": np.zeros((4, 3))}, ValueError, r"field 'data': expected 3 dimensions .* got 2 dimension\(s\) with shape \(4, 3\)"),
        ({"data": np.zeros((2, 3, 4, 5))}, ValueError, r"field 'data': expected 3 dimensions .* shape \(2, 3, 4, 5\)"),
        ({"data": np.zeros((4, 3, 5), dtype=np.int64)}, TypeError, r"field 'data': expected a floating-point array .* got dtype int64"),
        ({"data": [[[0.0]]]}, TypeError, r"field 'data': expected a numpy array .* got list"),
        ({"data": np.full((4, 3, 5), np.nan)}, ValueError, r"field 'data': expected finite values .* got 60 non-finite value\(s\), the first at epoch 0, channel 0, time 0"),
        ({"data": np.where(np.arange(60).reshape(4, 3, 5) == 37, np.inf, 0.0)}, ValueError, r"1 non-finite value\(s\), the first at epoch 2, channel 1, time 2"),
        ({"data": np.full((4, 3, 5), 1e39)}, ValueError, r"also after conversion to float32"),
        ({"sfreq": 0}, ValueError, r"field 'sfreq': expected a finite number > 0, got 0.0"),
        ({"sfreq": -250.0}, ValueError, r"field 'sfreq': expected a finite number > 0, got -250.0"),
        ({"sfreq": float("nan")}, ValueError, r"field 'sfreq': expected a finite number > 0, got nan"),
        ({"sfreq": "250"}, TypeError, r"field 'sfreq': expected a number, got '250'"),
        ({"tmin": float("inf")}, ValueError, r"field 'tmin': expected a finite number, got inf"),
        ({"table": pd.DataFrame({"label": [1, 2]})}, ValueError, r"field 'table': expected one row per epoch \(n_epochs = 4\), got 2 rows"),
        ({"table": pd.DataFrame({0: [1, 2, 3, 4]})}, TypeError, r"field 'table': expected string column names, got column\(s\) \[0\]"),
        ({"table": [1, 2, 3, 4]}, TypeError, r"field 'table': expected a pandas DataFrame"),
        ({"provenance": [{"x": object()}]}, TypeError, r"field 'provenance': expected JSON-serialisable steps"),
        ({"channels": Channels(["a", "b"], "eeg")}, ValueError, r"field 'channels': expected one channel per data row \(data has n_channels = 3\), got 2 channels"),
    ],
)
def test_epochset_validation_errors(kwargs, exc, pattern):
    args = {"data": np.zeros((4, 3, 5), np.float32), "sfreq": 100.0, "channels": Channels(["a", "b", "c"], "eeg")}
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        EpochSet(**args)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        ({"names": ["a", "b", "a"]}, ValueError, r"field 'ch_names': expected unique channel names, got duplicates 'a' at indices 0 and 2"),
        ({"names": ["a", "", "c"]}, TypeError, r"field 'ch_names': expected non-empty strings, got '' at index 1"),
        ({"names": "abc"}, TypeError, r"field 'ch_names': expected a sequence of channel-name strings"),
        ({"types": ["eeg", "eog", "emg"]}, ValueError, r"field 'ch_types': expected types among \['eeg', 'meg-mag', .*\], got unknown type\(s\) \['emg', 'eog'\]"),
        ({"types": ["eeg", "eeg"]}, ValueError, r"field 'ch_types': expected one type per channel \(3\), got 2 types"),
        ({"pos": np.zeros((3, 2))}, ValueError, r"field 'ch_pos': expected an array of shape \(n_channels, 3\) = \(3, 3\), got shape \(3, 2\)"),
        ({"pos": np.zeros((2, 3))}, ValueError, r"field 'ch_pos': .* got shape \(2, 3\)"),
        ({"pos": np.full((3, 3), np.inf)}, ValueError, r"field 'ch_pos': expected finite positions or NaN"),
        ({"coord_frame": "talairach"}, ValueError, r"field 'coord_frame': expected one of \[.*'mni_tal'.*\], got 'talairach'"),
        ({"units": ["V", "V"]}, ValueError, r"field 'ch_units': expected one unit per channel \(3\), got 2 units"),
        ({"bads": ["z"]}, ValueError, r"field 'bads': expected names of channels in the set, got unknown channel\(s\) \['z'\]"),
    ],
)
def test_channels_validation_errors(kwargs, exc, pattern):
    args = {"names": ["a", "b", "c"], "types": "eeg"}
    args.update(kwargs)
    with pytest.raises(exc, match=pattern):
        Channels(**args)


def test_default_units_and_equality():
    ch = Channels(["m", "g", "e"], ["meg-mag", "meg-grad", "seeg"])
    assert ch.units == ("T", "T/m", "V")
    assert ch == Channels(["m", "g", "e"], ["meg-mag", "meg-grad", "seeg"])
    assert ch != Channels(["m", "g", "e"], ["meg-mag", "meg-grad", "ecog"])
    assert np.isnan(ch.pos).all() and ch.pos.shape == (3, 3)


def test_selection_by_mask_index_slice_and_query(epochs):
    sub = epochs[np.array([True, False] * 3 + [True])]
    assert sub.n_epochs == 4
    np.testing.assert_array_equal(sub.data, epochs.data[[0, 2, 4, 6]])
    assert sub.table["trial"].tolist() == [0, 2, 4, 6]
    assert list(sub.table.index) == [0, 1, 2, 3]
    np.testing.assert_array_equal(epochs[[6, 1]].data, epochs.data[[6, 1]])
    assert epochs[-1].table["trial"].tolist() == [6]
    assert epochs[2:5].n_epochs == 3
    faces = epochs.query("label == 'face' and run == '2'")
    assert set(faces.table["label"]) == {"face"} and set(faces.table["run"]) == {"2"}
    np.testing.assert_array_equal(faces.data, epochs.data[faces.table["trial"].to_numpy()])
    with pytest.raises(ValueError, match=r"field 'index': expected a boolean mask of shape \(7,\), got shape \(3,\)"):
        epochs[np.array([True, False, True])]
    with pytest.raises(IndexError, match="out of range for 7 epochs"):
        epochs[[0, 9]]
    with pytest.raises(TypeError, match=r"use \.query"):
        epochs["label"]


def test_pick_channels_keeps_positions_and_bads(epochs):
    ch = epochs.channels
    ep = epochs.replace(channels=Channels(ch.names, ch.types, ch.pos, ch.coord_frame, ch.units, [ch.names[3]]))
    picked = ep.pick_channels([ch.names[3], ch.names[1]])
    assert picked.channels.names == (ch.names[3], ch.names[1])
    np.testing.assert_array_equal(picked.channels.pos, ch.pos[[3, 1]])
    np.testing.assert_array_equal(picked.data, epochs.data[:, [3, 1]])
    assert picked.channels.bads == (ch.names[3],)
    with pytest.raises(ValueError, match=r"unknown channel\(s\) \['Cz'\]"):
        ep.pick_channels(["Cz"])


def test_concatenate_same_subject(epochs):
    more = make_epochs(seed=1)
    more = more.replace(channels=epochs.channels, provenance=epochs.provenance)
    both = concatenate([epochs, more])
    assert both.n_epochs == 14
    np.testing.assert_array_equal(both.data[7:], more.data)
    assert both.table["trial"].tolist() == list(range(7)) * 2


def test_concatenate_refuses_mismatches_with_reasons(epochs):
    other = make_epochs(n_channels=6, subject="sub-02")
    with pytest.raises(ValueError, match=r"set 1 differing from set 0: .*channel names differ.*EpochCollection"):
        concatenate([epochs, other])
    with pytest.raises(ValueError, match=r"sfreq differs \(128.0 vs 256.0 Hz\)"):
        concatenate([epochs, epochs.replace(sfreq=256.0)])
    with pytest.raises(ValueError, match=r"n_times differs \(11 vs 12\)"):
        concatenate([epochs, make_epochs(n_times=12).replace(channels=epochs.channels)])
    with pytest.raises(ValueError, match="expected at least one EpochSet"):
        concatenate([])


def test_collection_keeps_each_subjects_channels():
    a = make_epochs(n_channels=5, n_times=11, subject="sub-01")
    b = make_epochs(n_epochs=4, n_channels=9, n_times=11, subject="sub-02", seed=3)
    a2 = make_epochs(n_epochs=3, n_channels=5, subject="sub-01", seed=4).replace(channels=a.channels,
                                                                                  provenance=a.provenance)
    coll = EpochCollection([a, b, a2])
    assert coll.subjects == ["sub-01", "sub-02"]
    assert coll["sub-01"].n_epochs == 10 and coll["sub-02"].n_channels == 9
    assert coll.n_epochs == 14
    table = coll.table
    assert len(table) == 14 and table["epoch"].tolist() == list(range(10)) + list(range(4))
    faces = coll.query("label == 'face'")
    assert faces.n_epochs == int((table["label"] == "face").sum())
    with pytest.raises(KeyError, match=r"subject 'sub-03' not in collection"):
        coll["sub-03"]


def test_collection_validation():
    a = make_epochs(subject="sub-01")
    with pytest.raises(ValueError, match=r"field 'sets\['sub-02'\]\.table\['subject'\]': expected 'sub-02' in every row, got \['sub-01'\]"):
        EpochCollection({"sub-02": a})
    unnamed = a.replace(table=a.table.assign(subject=None))
    with pytest.raises(ValueError, match=r"sets whose table names exactly one subject"):
        EpochCollection([unnamed])
    with pytest.raises(ValueError, match="expected at least one subject"):
        EpochCollection({})


def test_onset_must_be_numeric():
    with pytest.raises(TypeError, match=r"field 'table\['onset'\]': expected numbers \(seconds .*\) or NaN, got dtype"):
        EpochSet.from_array(np.zeros((2, 1, 3)), 10.0, table={"onset": ["1.0s", "2.0s"]})


def test_region_labels_validated_picked_and_stored(tmp_path):
    ch = Channels(["LA1", "LA2", "RH1"], "seeg", regions=["amygdala", "amygdala", None])
    assert ch.regions == ("amygdala", "amygdala", None)
    assert Channels(["a"], "eeg").regions == (None,)
    with pytest.raises(ValueError, match=r"field 'regions': expected one region label \(or None\) per channel \(3\), got 2 labels"):
        Channels(["LA1", "LA2", "RH1"], "seeg", regions=["a", "b"])
    ep = EpochSet(np.zeros((2, 3, 4), np.float32), 512.0, ch)
    assert ep.pick_channels(["RH1", "LA2"]).channels.regions == (None, "amygdala")
    save(ep, tmp_path / "s.h5")
    from neurodecode import load

    assert load(tmp_path / "s.h5").channels.regions == ("amygdala", "amygdala", None)
    assert ch.differences(ch.replace(regions=["x", "amygdala", None])) == ["channel region labels differ"]
