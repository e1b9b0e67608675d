"""On-disk format: bit-exact round trips, lazy chunk reads, chunked and atomic writes, bad files."""

import io
import json

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import make_epochs

import neurodecode as nd
from neurodecode import Channels, EpochCollection, EpochSet, EpochStore, EpochWriter, load, open_store, save


def test_round_trip_is_bit_exact(tmp_path, epochs):
    path = tmp_path / "sub-01.h5"
    save(epochs, path)
    back = load(path)
    assert back == epochs
    assert back.data.tobytes() == epochs.data.tobytes()
    pd.testing.assert_frame_equal(back.table, epochs.table, check_exact=True)
    assert back.table.dtypes.to_dict() == epochs.table.dtypes.to_dict()
    assert np.array_equal(back.channels.pos, epochs.channels.pos, equal_nan=True)
    assert np.isnan(back.channels.pos[0]).all()
    assert (back.sfreq, back.tmin, back.provenance) == (128.0, -0.125, ({"step": "test", "seed": 0},))
    assert back.channels.coord_frame == "head" and back.channels.units == epochs.channels.units


def test_round_trip_exotic_table_dtypes(tmp_path):
    table = pd.DataFrame({
        "label": pd.Categorical(["a", "b", "a"], categories=["b", "a"]),
        "count": pd.array([1, None, 3], dtype="Int64"),
        "when": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
        "stimulus": [101, 102, 101],
    })
    ep = EpochSet.from_array(np.arange(3 * 2 * 4, dtype=np.float32).reshape(3, 2, 4), 50.0, table=table)
    save(ep, tmp_path / "x.h5")
    assert load(tmp_path / "x.h5") == ep


def test_unstorable_table_column_is_named(tmp_path):
    ep = EpochSet.from_array(np.zeros((2, 1, 3)), 10.0, table={"mixed": [1, "a"]})
    with pytest.raises(TypeError, match=r"x.h5: field 'table': expected columns of one storable type each.*mixed"):
        save(ep, tmp_path / "x.h5")
    assert list(tmp_path.iterdir()) == []  # nothing left behind


def test_collection_round_trip(tmp_path):
    coll = EpochCollection([make_epochs(n_channels=5, subject="sub-01"),
                            make_epochs(n_epochs=4, n_channels=8, n_times=13, subject="sub-02", seed=2)])
    save(coll, tmp_path / "study.h5")
    back = load(tmp_path / "study.h5")
    assert isinstance(back, EpochCollection) and back == coll
    with open_store(tmp_path / "study.h5") as store:
        assert list(store) == ["sub-01", "sub-02"]
        assert store["sub-02"].shape == (4, 8, 13)
        np.testing.assert_array_equal(store["sub-02"][3], coll["sub-02"].data[3])
    with pytest.raises(ValueError, match=r"study.h5: field 'subject': expected one of \['sub-01', 'sub-02'\] .*collection"):
        EpochStore(tmp_path / "study.h5")


class CountingFile(io.RawIOBase):
    """A binary file that records every (offset, n_bytes) read through it."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.reads = []

    def readinto(self, buf):
        pos = self.f.tell()
        n = self.f.readinto(buf)
        self.reads.append((pos, n))
        return n

    def seek(self, offset, whence=0):
        return self.f.seek(offset, whence)

    def tell(self):
        return self.f.tell()

    def readable(self):
        return True

    def seekable(self):
        return True

    def close(self):
        self.f.close()
        super().close()


def test_lazy_read_touches_only_that_chunk(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 16, 1000)).astype(np.float32)  # 64 kB per epoch, 3.8 MB in all
    save(EpochSet.from_array(x, 250.0), tmp_path / "big.h5", chunk_bytes=64_000)
    counting = CountingFile(tmp_path / "big.h5")
    store = EpochStore(counting)
    try:
        assert store.chunk_epochs == 1
        opened = sum(n for _, n in counting.reads)
        assert opened < 40_000  # opening reads metadata and the table only
        for i in (17, 42, 3):
            counting.reads.clear()
            out = store[i]
            np.testing.assert_array_equal(out, x[i])
            chunk = store.data.id.get_chunk_info_by_coord((i, 0, 0))
            big = [(off, n) for off, n in counting.reads if n > 4096]
            assert big == [(chunk.byte_offset, chunk.size)]  # the data came from exactly this chunk
            assert sum(n for _, n in counting.reads) < chunk.size + 4096  # plus at most a few index nodes
    finally:
        store.close()
        counting.close()


def test_read_orders_duplicates_and_masks(tmp_path, epochs):
    save(epochs, tmp_path / "e.h5", chunk_bytes=1)
    with EpochStore(tmp_path / "e.h5") as store:
        np.testing.assert_array_equal(store.read([5, 1, 5, 0]), epochs.data[[5, 1, 5, 0]])
        np.testing.assert_array_equal(store.read(slice(1, 6, 2)), epochs.data[1:6:2])
        mask = (store.table["label"] == "face").to_numpy()
        np.testing.assert_array_equal(store.read(mask), epochs.data[mask])
        assert store.read([]).shape == (0, 5, 11)
        sub = store.load(store.table["run"] == "2")
        assert sub == epochs.query("run == '2'")
        blocks = list(store.iter_blocks(3))
        assert [b.shape[0] for b, _ in blocks] == [3, 3, 1]
        assert pd.concat([t for _, t in blocks], ignore_index=True).equals(epochs.table)
        with pytest.raises(IndexError, match="out of range for 7 epochs"):
            store.read(7)


def test_chunked_writer_streams_blocks(tmp_path):
    ch = Channels([f"c{i}" for i in range(4)], "seeg")
    rng = np.random.default_rng(1)
    blocks = [rng.normal(size=(n, 4, 9)).astype(np.float32) for n in (3, 5, 2)]
    with EpochWriter(tmp_path / "s.h5", sfreq=512.0, channels=ch, n_times=9, tmin=-0.5) as w:
        for k, b in enumerate(blocks):
            w.append(b, {"run": [str(k)] * len(b), "label": list(range(len(b)))})
        assert w.n_epochs == 10
        assert not (tmp_path / "s.h5").exists()  # nothing under the final name before close
    back = load(tmp_path / "s.h5")
    np.testing.assert_array_equal(back.data, np.concatenate(blocks))
    assert back.table["run"].tolist() == ["0"] * 3 + ["1"] * 5 + ["2"] * 2
    assert back.channels.types == ("seeg",) * 4 and back.tmin == -0.5


def test_writer_rejects_block_of_wrong_shape_and_leaves_nothing(tmp_path):
    ch = Channels(["a", "b"], "eeg")
    with pytest.raises(ValueError, match=r"s.h5: field 'data': expected epochs of shape \(n_channels, n_times\) = \(2, 9\) like the previous ones, got \(3, 9\)"):
        with EpochWriter(tmp_path / "s.h5", sfreq=100.0, channels=ch, n_times=9) as w:
            w.append(np.zeros((2, 2, 9)))
            w.append(np.zeros((2, 3, 9)))
    assert list(tmp_path.iterdir()) == []


def test_crash_mid_write_keeps_the_old_file(tmp_path, epochs):
    path = tmp_path / "e.h5"
    save(epochs, path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="e.h5: file exists; pass overwrite=True"):
        save(epochs, path)
    with pytest.raises(RuntimeError, match="simulated crash"):
        with EpochWriter(path, sfreq=1.0, channels=Channels(["x"], "eeg"), n_times=2, overwrite=True) as w:
            w.append(np.ones((4, 1, 2)))
            raise RuntimeError("simulated crash")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["e.h5"]  # no temporary file left
    new = make_epochs(seed=5)
    save(new, path, overwrite=True)
    assert load(path) == new


def test_killed_writer_never_leaves_a_file_under_the_final_name(tmp_path):
    import subprocess
    import sys

    script = (
        "import os, numpy as np, neurodecode as nd\n"
        f"w = nd.EpochWriter({str(tmp_path / 'k.h5')!r}, sfreq=1.0, channels=nd.Channels(['x'], 'eeg'), n_times=4)\n"
        "w.append(np.ones((10, 1, 4)))\n"
        "os._exit(1)  # killed before close\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    assert not (tmp_path / "k.h5").exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(".k.h5.") and name.endswith((".tmp", ".lock")) for name in leftovers), leftovers
    save(EpochSet.from_array(np.ones((2, 1, 4)), 1.0), tmp_path / "k.h5")   # the dead writer's lock is no obstacle
    assert (tmp_path / "k.h5").is_file() and not (tmp_path / ".k.h5.lock").exists()


def test_bad_files_are_named(tmp_path):
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text.h5: expected an HDF5 file written by neurodecode"):
        load(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"other.h5: field 'format': expected 'neurodecode-epochs', got None"):
        load(tmp_path / "other.h5")
    with pytest.raises(FileNotFoundError, match="missing.h5: no such epoch store"):
        load(tmp_path / "missing.h5")
    ep = make_epochs()
    save(ep, tmp_path / "future.h5")
    with h5py.File(tmp_path / "future.h5", "a") as f:
        f.attrs["format_version"] = 99
    with pytest.raises(ValueError, match=r"future.h5: field 'format_version': expected <= 2 .* got 99"):
        load(tmp_path / "future.h5")
    with pytest.raises(FileNotFoundError, match="parent directory"):
        save(ep, tmp_path / "nope" / "x.h5")


def test_file_is_plain_hdf5_and_parquet(tmp_path, epochs):
    """No pickle: arrays, JSON attributes and Parquet bytes only."""
    save(epochs, tmp_path / "e.h5")
    with h5py.File(tmp_path / "e.h5", "r") as f:
        assert f.attrs["format"] == "neurodecode-epochs" and f.attrs["kind"] == "epochs"
        assert f["data"].dtype == np.float32 and f["data"].chunks[1:] == (5, 11)
        meta = json.loads(f.attrs["meta"])
        assert meta["ch_names"] == list(epochs.channels.names)
        assert bytes(f["table"][:4]) == b"PAR1"


def test_collection_writer_checks_subject_column(tmp_path):
    with pytest.raises(ValueError, match=r"c.h5\[sub-01\]: field 'table.subject': expected 'sub-01' or missing, got \['sub-02'\]"):
        with nd.CollectionWriter(tmp_path / "c.h5") as w:
            g = w.add_subject("sub-01", sfreq=10.0, channels=Channels(["a"], "eeg"), n_times=3)
            g.append(np.zeros((2, 1, 3)), {"subject": ["sub-02", "sub-02"]})
    assert list(tmp_path.iterdir()) == []
    with nd.CollectionWriter(tmp_path / "c.h5") as w:
        w.add_subject("sub-01", sfreq=10.0, channels=Channels(["a"], "eeg"), n_times=3).append(np.zeros((2, 1, 3)))
    assert load(tmp_path / "c.h5")["sub-01"].table["subject"].tolist() == ["sub-01", "sub-01"]


@pytest.mark.parametrize("chunk_bytes, compression", [(1, None), (3 * 4 * 6 * 50, None), (3 * 4 * 6 * 50, "gzip")])
def test_memory_mapped_and_h5py_reads_agree(tmp_path, chunk_bytes, compression):
    """Uncompressed stores are read with pread at the located chunk offsets; compressed ones through h5py."""
    x = np.random.default_rng(2).normal(size=(20, 6, 50)).astype(np.float32)
    save(EpochSet.from_array(x, 100.0), tmp_path / "m.h5", chunk_bytes=chunk_bytes, compression=compression)
    with EpochStore(tmp_path / "m.h5") as store:
        assert store.chunk_epochs == (1 if chunk_bytes == 1 else 3)
        assert (store._fd is not None) == (compression is None)
        if compression is None:  # the located offsets are HDF5's own
            for c in range(len(store._offsets)):
                info = store.data.id.get_chunk_info_by_coord((c * store.chunk_epochs, 0, 0))
                assert store._offsets[c] == info.byte_offset
        for i in (0, 4, 19, -1):
            np.testing.assert_array_equal(store[i], x[i])
        for key in ([19, 0, 4, 4], slice(2, 17), slice(None, None, 3), np.arange(20) % 2 == 0, []):
            np.testing.assert_array_equal(store.read(key), x[key])
        with pytest.raises(IndexError, match="out of range for 20 epochs"):
            store[20]


def test_empty_collection_is_refused_and_nothing_written(tmp_path):
    with pytest.raises(ValueError, match=r"e.h5: a collection needs at least one subject, got none"):
        with nd.CollectionWriter(tmp_path / "e.h5"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_stimulus_table_travels_with_the_epochs(tmp_path):
    ep = make_epochs()
    stimuli = pd.DataFrame({"stimulus": ["img0", "img1", "img2"], "file": ["a.png", "b.png", "c.png"],
                            "pixels": [np.arange(4, dtype=np.uint8) + k for k in range(3)]})
    ep = ep.replace(stimuli=stimuli)
    save(ep, tmp_path / "s.h5")
    back = load(tmp_path / "s.h5")
    assert back == ep and back.stimuli["file"].tolist() == ["a.png", "b.png", "c.png"]
    np.testing.assert_array_equal(back.stimuli["pixels"][2], [2, 3, 4, 5])
    assert back[[0, 1]].stimuli is not None and len(back[[0, 1]].stimuli) == 3  # kept whole by selection
    with pytest.raises(ValueError, match=r"field 'stimuli': expected a row for every stimulus id of the table, got no row for \['img2'\]"):
        ep.replace(stimuli=stimuli.iloc[:2])
    with pytest.raises(ValueError, match=r"field 'stimuli\['stimulus'\]': expected unique, non-missing ids, got duplicates \['img0'\]"):
        ep.replace(stimuli=pd.concat([stimuli, stimuli.iloc[[0]]]))
    other = make_epochs(seed=3).replace(channels=ep.channels, provenance=ep.provenance,
                                        stimuli=stimuli.assign(file=["a.png", "B.png", "c.png"]))
    with pytest.raises(ValueError, match=r"expected stimulus tables that agree on every shared id, got different rows for 'img1'"):
        nd.concatenate([ep, other])
    same = make_epochs(seed=3).replace(channels=ep.channels, provenance=ep.provenance, stimuli=stimuli)
    assert len(nd.concatenate([ep, same]).stimuli) == 3


def test_writer_refuses_a_stimulus_table_missing_ids(tmp_path):
    with pytest.raises(ValueError, match=r"field 'stimuli': expected a row for every stimulus id of the table, got no row for \['b'\]"):
        with EpochWriter(tmp_path / "w.h5", sfreq=10.0, channels=Channels(["x"], "eeg"), n_times=2,
                         stimuli=pd.DataFrame({"stimulus": ["a"]})) as w:
            w.append(np.zeros((2, 1, 2)), {"stimulus": ["a", "b"]})
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("attr", "value"), [("sfreq", -1.0), ("sfreq", 0.0), ("sfreq", np.nan), ("tmin", np.inf)])
def test_a_store_with_an_impossible_sampling_rate_is_refused_on_opening(tmp_path, epochs, attr, value):
    import h5py

    save(epochs, tmp_path / "s.h5")
    with h5py.File(tmp_path / "s.h5", "r+") as f:
        group = f[next(k for k in f if isinstance(f[k], h5py.Group))] if "data" not in f else f
        group.attrs[attr] = value
    with pytest.raises(ValueError, match=r"s\.h5: field 'sfreq'/'tmin': expected a positive finite sampling rate"):
        open_store(tmp_path / "s.h5")
    with pytest.raises(ValueError, match="field 'sfreq'/'tmin'"):
        load(tmp_path / "s.h5")
