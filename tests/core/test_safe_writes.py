"""Nothing is lost: one writer per store, complete-or-nothing under kills, a full disk reported before damage,
damaged chunks detected on read, the umask respected. The concurrency and kill cases run real processes."""

import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

from neurodecode import EpochSet, EpochWriter, load, save
from neurodecode.core.storage import CorruptStoreError, EpochStore


def _epochs(n=40, value=None, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.normal(size=(n, 8, 64)).astype(np.float32) if value is None else np.full((n, 8, 64), value, np.float32)
    return EpochSet.from_array(data, 100.0)


WRITER = textwrap.dedent("""
    import sys, time, numpy as np, neurodecode as nd
    path, value, delay, overwrite = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
    chs = nd.Channels([f"c{i}" for i in range(8)], "eeg")
    try:
        with nd.EpochWriter(path, sfreq=100.0, channels=chs, n_times=64, overwrite=overwrite, chunk_bytes=8 * 64 * 4) as w:
            print("open", flush=True)
            for _ in range(20):
                w.append(np.full((4, 8, 64), value, np.float32))
                time.sleep(delay)
        print("done", flush=True)
    except FileExistsError as err:
        print("refused:", err, flush=True)
""")


def _writer(path, value, delay, overwrite):
    return subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(value), str(delay), "1" if overwrite else "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_two_writers_of_one_path_one_succeeds_the_other_is_refused(tmp_path, attempt):
    path = tmp_path / "race.h5"
    rnd = random.Random(attempt)
    a = _writer(path, 1.0, rnd.uniform(0.005, 0.02), False)
    time.sleep(rnd.uniform(0.0, 0.3))
    b = _writer(path, 2.0, rnd.uniform(0.005, 0.02), False)
    outs = [p.communicate(timeout=120)[0] for p in (a, b)]
    done = [o for o in outs if "done" in o]
    refused = [o for o in outs if "refused" in o]
    assert len(done) == 1 and len(refused) == 1, outs
    assert "being written by another process" in refused[0] or "file exists" in refused[0]
    ep = load(path)                                           # the winner's data, whole and verified
    assert ep.n_epochs == 80 and len(np.unique(ep.data)) == 1


KILLED = textwrap.dedent("""
    import sys, numpy as np, neurodecode as nd
    path = sys.argv[1]
    chs = nd.Channels([f"c{i}" for i in range(8)], "eeg")
    with nd.EpochWriter(path, sfreq=100.0, channels=chs, n_times=64, overwrite=True) as w:
        for _ in range(400):
            w.append(np.full((4, 8, 64), 7.0, np.float32))
""")


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(4))
def test_a_writer_killed_at_any_moment_leaves_the_old_store_or_the_new_one(tmp_path, attempt):
    path = tmp_path / "kept.h5"
    old = _epochs(12, value=3.0)
    save(old, path)
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(path)])
    time.sleep(random.Random(attempt).uniform(1.0, 3.0))       # somewhere in start-up, appending or renaming
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    ep = load(path)                                           # never a half-written file under the final name
    assert ep == old or (ep.n_epochs == 1600 and float(ep.data[0, 0, 0]) == 7.0)


def test_a_second_writer_in_the_same_process_is_refused_and_a_dead_lock_is_no_obstacle(tmp_path):
    path = tmp_path / "x.h5"
    first = EpochWriter(path, sfreq=10.0, channels=_epochs().channels, n_times=64)
    with pytest.raises(FileExistsError, match=rf"x.h5: being written by another process \(pid {os.getpid()}\)"):
        EpochWriter(path, sfreq=10.0, channels=_epochs().channels, n_times=64)
    first.append(_epochs(3).data)
    first.close()
    with pytest.raises(FileExistsError, match="x.h5: file exists; pass overwrite=True"):
        save(_epochs(), path)
    save(_epochs(5), path, overwrite=True)
    assert load(path).n_epochs == 5 and not (tmp_path / ".x.h5.lock").exists()


def test_a_full_disk_is_an_error_naming_the_path_and_the_old_file_stays(tmp_path, monkeypatch):
    import shutil

    import neurodecode.core.files as files

    path = tmp_path / "full.h5"
    old = _epochs(6)
    save(old, path)
    real = shutil.disk_usage

    def nearly_full(p):
        usage = real(p)
        return usage._replace(free=(1 << 20) + 20_000)      # room to open the file, not for the epochs

    monkeypatch.setattr(files.shutil, "disk_usage", nearly_full)
    with pytest.raises(OSError, match=r"full.h5: not enough disk space: 0.1 MB to write, 1.1 MB free; nothing was "
                                      r"replaced") as err:
        save(_epochs(40), path, overwrite=True)
    assert err.value.errno == 28                              # ENOSPC
    monkeypatch.undo()
    assert load(path) == old and sorted(p.name for p in tmp_path.iterdir()) == ["full.h5"]


def _data_offset(path, epoch):
    with h5py.File(path, "r") as f:
        d = f["data"]
        per = d.chunks[0]
        info = d.id.get_chunk_info_by_coord((epoch - epoch % per, 0, 0))
        return info.byte_offset + (epoch % per) * 4 * d.shape[1] * d.shape[2]


@pytest.mark.parametrize("damage", ["flip", "nan"])
def test_damaged_epochs_are_detected_on_read(tmp_path, damage):
    path = tmp_path / "d.h5"
    save(_epochs(20), path)
    raw = bytearray(path.read_bytes())
    at = _data_offset(path, 13) + 100
    if damage == "flip":
        raw[at] ^= 0x10
    else:
        raw[at:at + 4] = np.float32(np.nan).tobytes()
    path.write_bytes(bytes(raw))
    with EpochStore(path) as store:
        store[12]                                              # the neighbours are fine
        with pytest.raises(CorruptStoreError, match=r"d.h5: field 'data': epoch 13 does not match its stored CRC-32"):
            store[13]
        with pytest.raises(CorruptStoreError, match="epoch 13"):
            store.load()
    with EpochStore(path, verify=False) as store:               # asked for: no verification
        assert store.read(13).shape == (8, 64)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_files_follow_the_umask(tmp_path, umask):
    from neurodecode.core.training import save_checkpoint
    from neurodecode.encoders.models import ResidualMLP

    old = os.umask(umask)
    try:
        save(_epochs(3), tmp_path / "s.h5")
        save_checkpoint(tmp_path / "ckpt", ResidualMLP(4, 2, hidden=8, n_blocks=0), {})
    finally:
        os.umask(old)
    assert (tmp_path / "s.h5").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "ckpt" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_output_folder_is_published_whole_or_not_at_all(tmp_path):
    from neurodecode.core.files import OutputFolder, WriteLock

    out = tmp_path / "rec"
    out.mkdir()
    (out / "notes.txt").write_text("mine")                       # the user's own file stays
    with OutputFolder(out, marker="report.html") as staging:
        assert staging.parent == tmp_path and staging.name.startswith(".rec.")
        (staging / "images").mkdir()
        (staging / "images" / "0.png").write_bytes(b"png")
        (staging / "report.html").write_text("first")
        assert not (out / "report.html").exists()                # nothing visible until the run succeeds
    assert sorted(p.name for p in out.iterdir()) == [".neurodecode-outputs.json", "images", "notes.txt", "report.html"]
    assert not list(tmp_path.glob(".rec.*"))                     # no staging folder, no lock file left
    # a second run is refused unless it overwrites, and then replaces every output of the first
    with pytest.raises(FileExistsError, match=r"rec: holds an earlier run's outputs \(images, report.html\)"):
        OutputFolder(out).__enter__()
    with OutputFolder(out, overwrite=True, marker="report.html") as staging:
        (staging / "report.html").write_text("second")
    assert sorted(p.name for p in out.iterdir()) == [".neurodecode-outputs.json", "notes.txt", "report.html"]
    assert (out / "report.html").read_text() == "second" and (out / "notes.txt").read_text() == "mine"
    # a failing run leaves the folder as it was
    with pytest.raises(RuntimeError, match="boom"):
        with OutputFolder(out, overwrite=True) as staging:
            (staging / "report.html").write_text("third")
            raise RuntimeError("boom")
    assert (out / "report.html").read_text() == "second" and not list(tmp_path.glob(".rec.*"))
    # an output named like a file of the user's is refused, nothing written
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"\['notes.txt'\] already there and not from an earlier run"):
        with OutputFolder(mine) as staging:
            (staging / "notes.txt").write_text("theirs")
    assert (mine / "notes.txt").read_text() == "mine" and not (mine / "report.html").exists()
    # a killed run's staging folder is removed by the next one; a concurrent writer is refused at once
    stale = tmp_path / ".rec.killed.staging"
    stale.mkdir()
    (stale / "report.html").write_text("half")
    with OutputFolder(out, overwrite=True) as staging:
        assert not stale.exists()
        with pytest.raises(FileExistsError, match="being written by another process"):
            WriteLock(out)


@pytest.mark.parametrize("entries", ['{"entries": ["../outside"]}', '{"entries": "x"}', "not json"])
def test_an_output_manifest_cannot_point_outside_its_folder(tmp_path, entries):
    from neurodecode.core.files import OutputFolder

    out = tmp_path / "rec"
    out.mkdir()
    (out / ".neurodecode-outputs.json").write_text(entries)
    (tmp_path / "outside").write_text("keep")
    with pytest.raises(ValueError, match=r"\.neurodecode-outputs\.json: field 'entries'"):
        with OutputFolder(out, overwrite=True):
            pass
    assert (tmp_path / "outside").read_text() == "keep"
