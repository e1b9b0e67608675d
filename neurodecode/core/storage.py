"""On-disk format of epochs: chunked HDF5, lazily readable, written atomically, no pickle.

Layout of one epoch group (the file root for an :class:`~neurodecode.EpochSet`, ``/subjects/<id>`` for each
subject of an :class:`~neurodecode.EpochCollection`)::

    data      float32 (n_epochs, n_channels, n_times), chunked along epochs (a chunk holds whole epochs)
    epoch_crc32  uint32 (n_epochs,), the CRC-32 of each epoch's bytes, verified whenever an epoch is read
    ch_pos    float64 (n_channels, 3), NaN where unknown
    table     uint8, the per-epoch table as Parquet bytes (dtypes round-trip exactly)
    stimuli   uint8, the stimulus table as Parquet bytes (only when the epochs have one)
    attrs     sfreq, tmin, n_epochs and a JSON "meta" attribute: channel names/types/units/bads, coordinate
              frame, provenance

The root carries ``format = "neurodecode-epochs"``, ``format_version`` and ``kind`` (``"epochs"`` or
``"collection"``). Any HDF5 tool (h5py, h5ls, MATLAB's h5read) can read the arrays; the table is standard Parquet.

Writes go to a uniquely named temporary file beside the target (created with the umask's permissions), which
takes the final name only after a complete, flushed write: a crash never leaves a half-written file under the final
name, and an existing file is never replaced unless ``overwrite=True`` (without it the final step is a hard link
that fails if the name exists). One writer per path: a second writer of the same path fails when it opens
(:class:`~neurodecode.core.files.WriteLock`). Free disk space is checked before every block, so a full disk is an
``OSError`` naming the path and the old file stays intact. :class:`EpochWriter` appends epochs chunk by chunk, so a
recording larger than memory can be stored. Reading verifies each epoch's checksum (``verify=False`` skips it):
flipped bytes raise :class:`CorruptStoreError` naming the file and the epoch.
"""

from __future__ import annotations

import io
import json
import os
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import h5py
import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochCollection, EpochSet, check_data, check_stimuli, check_table
from neurodecode.core.files import WriteLock, check_free_space, publish_file, temporary_file
from neurodecode.core.validation import normalize_index

__all__ = [
    "CorruptStoreError",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CollectionStore",
    "CollectionWriter",
    "EpochStore",
    "EpochWriter",
    "read_epochs",
    "load",
    "open_store",
    "save",
]

FORMAT_NAME = "neurodecode-epochs"
FORMAT_VERSION = 2          # 2: per-epoch CRC-32 checksums (version-1 stores are read without verification)
#: Default upper bound of one chunk's size; a chunk always holds at least one whole epoch.
CHUNK_BYTES = 256 * 1024


def _table_to_bytes(table: pd.DataFrame, where: str) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        arrow = pa.Table.from_pandas(table, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        raise TypeError(
            f"{where}: field 'table': expected columns of one storable type each (numbers, strings, booleans, "
            f"dates, categoricals), got {err}") from None
    buf = io.BytesIO()
    pq.write_table(arrow, buf, compression="zstd")
    return np.frombuffer(buf.getvalue(), dtype=np.uint8)


def _table_from_bytes(raw: np.ndarray) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(raw.tobytes())).to_pandas()


def _chunk_epochs(n_channels: int, n_times: int, chunk_bytes: int) -> int:
    return max(1, chunk_bytes // (4 * n_channels * n_times))


# --------------------------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------------------------


class CorruptStoreError(ValueError):
    """A stored epoch does not match its checksum: the file was damaged after it was written."""


def epoch_checksums(data: np.ndarray) -> np.ndarray:
    """CRC-32 of each epoch's float32 bytes, shape (n_epochs,) uint32."""
    return np.array([zlib.crc32(np.ascontiguousarray(e, dtype="<f4")) for e in data], dtype=np.uint32)


class _AtomicFile:
    """An HDF5 file written under a temporary name and given ``path`` on :meth:`commit`, with ``path`` locked."""

    def __init__(self, path: str | os.PathLike, overwrite: bool) -> None:
        self.path, self.overwrite = Path(path), overwrite
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path}: expected a file path for the epoch store, got a directory")
        if not self.path.parent.is_dir():
            raise FileNotFoundError(f"{self.path}: parent directory {self.path.parent} does not exist")
        self.lock = WriteLock(self.path)
        try:
            if self.path.exists() and not overwrite:
                raise FileExistsError(f"{self.path}: file exists; pass overwrite=True to replace it")
            check_free_space(self.path, 0)
            self.tmp = temporary_file(self.path)
            self.h5 = h5py.File(self.tmp, "w", libver=("v110", "latest"))
        except BaseException:
            self.lock.release()
            if hasattr(self, "tmp"):
                self.tmp.unlink(missing_ok=True)
            raise
        self.h5.attrs["format"] = FORMAT_NAME
        self.h5.attrs["format_version"] = FORMAT_VERSION

    def reserve(self, n_bytes: int) -> None:
        """Refuse (OSError naming the path) a write the disk cannot hold."""
        check_free_space(self.path, n_bytes)

    def commit(self) -> None:
        try:
            self.h5.flush()
            self.h5.close()
            publish_file(self.tmp, self.path, self.overwrite)
        finally:
            self.lock.release()

    def abort(self) -> None:
        try:
            self.h5.close()
        finally:
            self.tmp.unlink(missing_ok=True)
            self.lock.release()


class _GroupWriter:
    """Appends epochs to one epoch group of an open HDF5 file."""

    def __init__(self, group: h5py.Group, sfreq: float, channels: Channels, n_times: int, tmin: float,
                 provenance: Sequence[dict], chunk_bytes: int, compression: str | None, where: str,
                 subject: str | None = None, reserve: Any = None) -> None:
        # validate the metadata through the EpochSet contract, on an empty set
        probe = EpochSet(np.zeros((0, len(channels), n_times), np.float32), sfreq, channels, None, tmin, provenance)
        self.template = probe
        self.where = where
        n_ch = len(channels)
        self.dset = group.create_dataset(
            "data", shape=(0, n_ch, n_times), maxshape=(None, n_ch, n_times), dtype=np.float32,
            chunks=(_chunk_epochs(n_ch, n_times, chunk_bytes), n_ch, n_times), compression=compression)
        self.crc = group.create_dataset("epoch_crc32", shape=(0,), maxshape=(None,), dtype=np.uint32,
                                        chunks=(4096,))
        self.reserve = reserve or (lambda n: None)
        group.create_dataset("ch_pos", data=channels.pos)
        meta = {"ch_names": list(channels.names), "ch_types": list(channels.types), "ch_units": list(channels.units),
                "bads": list(channels.bads), "regions": list(channels.regions), "coord_frame": channels.coord_frame,
                "provenance": list(probe.provenance)}
        group.attrs["meta"] = json.dumps(meta)
        group.attrs["sfreq"] = probe.sfreq
        group.attrs["tmin"] = probe.tmin
        self.group = group
        self.subject = subject
        self.stimuli: pd.DataFrame | None = None
        self.tables: list[pd.DataFrame] = []
        self.n_epochs = 0

    def append(self, data: np.ndarray, table: pd.DataFrame | Mapping | None = None) -> None:
        data = check_data(data)
        shape = self.dset.shape[1:]
        if data.shape[1:] != shape:
            raise ValueError(f"{self.where}: field 'data': expected epochs of shape (n_channels, n_times) = {shape} "
                             f"like the previous ones, got {data.shape[1:]}")
        table = check_table(table, data.shape[0])
        if self.subject is not None:  # a collection's subject: fill missing ids, refuse others
            subj = table["subject"]
            wrong = sorted({str(s) for s in subj.dropna() if str(s) != self.subject})
            if wrong:
                raise ValueError(f"{self.where}: field 'table.subject': expected {self.subject!r} or missing, "
                                 f"got {wrong}")
            if subj.isna().any():
                table.loc[subj.isna(), "subject"] = self.subject
        n = data.shape[0]
        self.reserve(data.nbytes + 4 * n)
        self.tables.append(table)
        self.dset.resize(self.n_epochs + n, axis=0)
        self.dset[self.n_epochs:self.n_epochs + n] = data
        self.crc.resize(self.n_epochs + n, axis=0)
        self.crc[self.n_epochs:self.n_epochs + n] = epoch_checksums(data)
        self.n_epochs += n

    def finish(self, stimuli: pd.DataFrame | None = None) -> None:
        table = pd.concat(self.tables, ignore_index=True) if self.tables else check_table(None, 0)
        raw = _table_to_bytes(table, self.where)
        self.reserve(raw.nbytes)
        self.group.create_dataset("table", data=raw)
        if stimuli is not None:
            check_stimuli(stimuli, table)  # every stimulus id of the table has a row
            self.group.create_dataset("stimuli", data=_table_to_bytes(stimuli, self.where + " stimuli"))
        self.group.attrs["n_epochs"] = self.n_epochs


class _AtomicWriter:
    """Close/abort/context-manager logic shared by the writers; subclasses fill ``_finish``."""

    _file: _AtomicFile
    _open: bool

    def _finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Finish the file and move it to its final name."""
        if not self._open:
            return
        self._open = False
        try:
            self._finish()
            self._file.commit()
        except BaseException:
            self._file.abort()
            raise

    def abort(self) -> None:
        """Discard everything written; an existing file under the final name is left untouched."""
        if self._open:
            self._open = False
            self._file.abort()

    def __enter__(self):
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class EpochWriter(_AtomicWriter):
    """Write one EpochSet to disk chunk by chunk (for recordings larger than memory).

    Parameters
    ----------
    path : str or path-like
        Target file (conventionally ``*.h5``). Nothing appears under this name until ``close`` succeeds.
    sfreq, channels, n_times, tmin, provenance
        As in :class:`~neurodecode.EpochSet`; every appended block must have ``n_channels = len(channels)`` and
        ``n_times``.
    overwrite : bool
        Replace an existing file (only once the new one is complete).
    chunk_bytes : int
        Upper bound of one HDF5 chunk; a chunk holds ``max(1, chunk_bytes // epoch_bytes)`` whole epochs.
    compression : str or None
        HDF5 filter (``"gzip"``, ``"lzf"``) or None (default, fastest random access).
    stimuli : DataFrame, optional
        The stimulus table (see :class:`~neurodecode.EpochSet`), written at ``close``.

    Examples
    --------
    >>> with EpochWriter("sub-01.h5", sfreq=250.0, channels=chs, n_times=500) as w:  # doctest: +SKIP
    ...     for block, rows in blocks:
    ...         w.append(block, rows)
    """

    def __init__(self, path: str | os.PathLike, *, sfreq: float, channels: Channels, n_times: int,
                 tmin: float = 0.0, provenance: Sequence[dict] = (), overwrite: bool = False,
                 chunk_bytes: int = CHUNK_BYTES, compression: str | None = None,
                 stimuli: pd.DataFrame | None = None) -> None:
        self._stimuli = stimuli
        self._file = _AtomicFile(path, overwrite)
        try:
            self._file.h5.attrs["kind"] = "epochs"
            self._group = _GroupWriter(self._file.h5, sfreq, channels, n_times, tmin, provenance, chunk_bytes,
                                       compression, str(path), reserve=self._file.reserve)
        except BaseException:
            self._file.abort()
            raise
        self._open = True

    @property
    def n_epochs(self) -> int:
        return self._group.n_epochs

    def append(self, data: np.ndarray, table: pd.DataFrame | Mapping | None = None) -> None:
        """Append epochs ``data`` (n_new, n_channels, n_times) with their table rows (n_new rows)."""
        if not self._open:
            raise RuntimeError(f"{self._file.path}: writer is closed")
        try:
            self._group.append(data, table)
        except BaseException:
            self.abort()
            raise

    def _finish(self) -> None:
        self._group.finish(self._stimuli)


class CollectionWriter(_AtomicWriter):
    """Write several subjects into one file, each subject's epochs appended chunk by chunk.

    >>> with CollectionWriter("study.h5") as w:  # doctest: +SKIP
    ...     sub = w.add_subject("sub-01", sfreq=1000.0, channels=chs, n_times=801)
    ...     sub.append(block, rows)
    """

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, chunk_bytes: int = CHUNK_BYTES,
                 compression: str | None = None) -> None:
        self._file = _AtomicFile(path, overwrite)
        try:
            self._file.h5.attrs["kind"] = "collection"
            self._root = self._file.h5.create_group("subjects")
        except BaseException:
            self._file.abort()
            raise
        self._subjects: dict[str, _GroupWriter] = {}
        self._kwargs = {"chunk_bytes": chunk_bytes, "compression": compression}
        self._open = True

    def add_subject(self, subject: str, *, sfreq: float, channels: Channels, n_times: int, tmin: float = 0.0,
                    provenance: Sequence[dict] = (), stimuli: pd.DataFrame | None = None) -> _GroupWriter:
        """Start a subject's group; append to the returned writer with ``.append(data, table)``."""
        if not isinstance(subject, str) or not subject or "/" in subject:
            self.abort()
            raise ValueError(f"{self._file.path}: field 'subject': expected a non-empty id without '/', "
                             f"got {subject!r}")
        if subject in self._subjects:
            self.abort()
            raise ValueError(f"{self._file.path}: field 'subject': expected a new subject, got {subject!r} twice")
        try:
            group = _GroupWriter(self._root.create_group(subject), sfreq, channels, n_times, tmin, provenance,
                                 where=f"{self._file.path}[{subject}]", subject=subject,
                                 reserve=self._file.reserve, **self._kwargs)
        except BaseException:
            self.abort()
            raise
        group.stimuli = stimuli
        self._subjects[subject] = group
        return group

    def _finish(self) -> None:
        if not self._subjects:
            raise ValueError(f"{self._file.path}: a collection needs at least one subject, got none")
        for group in self._subjects.values():
            group.finish(group.stimuli)


def save(obj: EpochSet | EpochCollection, path: str | os.PathLike, *, overwrite: bool = False,
         chunk_bytes: int = CHUNK_BYTES, compression: str | None = None) -> None:
    """Write an EpochSet or EpochCollection atomically to ``path`` (HDF5; see the module docstring).

    Parameters
    ----------
    obj : EpochSet or EpochCollection
        The epochs: data ``(n_epochs, n_channels, n_times)`` (per subject for a collection), channels, table,
        stimuli and provenance.
    path : str or path-like
        The ``.h5`` file. It is written under a temporary name and renamed when complete, so a killed write
        leaves the old file or the new one, never a partial one.
    overwrite : bool
        Replace an existing file.
    chunk_bytes : int
        Upper bound of one HDF5 chunk (whole epochs per chunk): the unit of lazy reads.
    compression : str or None
        HDF5 filter (``"gzip"``, ``"lzf"``) or None (default, fastest random access).

    Raises
    ------
    FileExistsError
        When ``path`` exists and ``overwrite`` is False.
    """
    if isinstance(obj, EpochSet):
        with EpochWriter(path, sfreq=obj.sfreq, channels=obj.channels, n_times=obj.n_times, tmin=obj.tmin,
                         provenance=obj.provenance, overwrite=overwrite, chunk_bytes=chunk_bytes,
                         compression=compression, stimuli=obj.stimuli) as w:
            w.append(obj.data, obj.table)
    elif isinstance(obj, EpochCollection):
        with CollectionWriter(path, overwrite=overwrite, chunk_bytes=chunk_bytes, compression=compression) as w:
            for subject, ep in obj.items():
                w.add_subject(subject, sfreq=ep.sfreq, channels=ep.channels, n_times=ep.n_times, tmin=ep.tmin,
                              provenance=ep.provenance, stimuli=ep.stimuli).append(ep.data, ep.table)
    else:
        raise TypeError(f"field 'obj': expected an EpochSet or EpochCollection, got {type(obj).__name__}")


# --------------------------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------------------------


def _open_h5(source: str | os.PathLike | BinaryIO) -> tuple[h5py.File, str]:
    name = getattr(source, "name", None) if not isinstance(source, (str, os.PathLike)) else os.fspath(source)
    name = str(name) if name is not None else "<file object>"
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise FileNotFoundError(f"{name}: no such epoch store")
    try:
        h5 = h5py.File(source, "r")
    except OSError as err:
        raise ValueError(f"{name}: expected an HDF5 file written by neurodecode, got an unreadable file ({err})") \
            from None
    fmt = h5.attrs.get("format")
    if fmt != FORMAT_NAME:
        h5.close()
        raise ValueError(f"{name}: field 'format': expected {FORMAT_NAME!r}, got {fmt!r}")
    version = int(h5.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        h5.close()
        raise ValueError(f"{name}: field 'format_version': expected <= {FORMAT_VERSION} (this neurodecode), got "
                         f"{version}; upgrade neurodecode")
    return h5, name


class EpochStore:
    """Lazy, read-only access to the epochs of one stored EpochSet (or one subject of a collection).

    Metadata and the per-epoch table are read when the store opens; data are read only when indexed, one
    HDF5 chunk at a time, so a single epoch of a 10 GB file costs one chunk read.

    Parameters
    ----------
    source : str, path-like or binary file object
        The file written by :func:`save` / :class:`EpochWriter`.
    subject : str, optional
        For a collection file, the subject to open.
    verify : bool
        Check every epoch read against its stored CRC-32 (:class:`CorruptStoreError` on a mismatch). About 0.14 ms
        per 256 KB epoch on one core; ``False`` for trusted files where warm random reads must be fastest.

    Examples
    --------
    >>> with EpochStore("sub-01.h5") as store:  # doctest: +SKIP
    ...     x = store[12]            # (n_channels, n_times)
    ...     ep = store.load(store.table["run"] == "2")  # an in-memory EpochSet
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, subject: str | None = None, *, verify: bool = True,
                 _h5: h5py.File | None = None, _name: str | None = None) -> None:
        self._subject, self.verify = subject, verify
        if _h5 is None:
            self._h5, self.name = _open_h5(source)
            self._owns = True
        else:
            self._h5, self.name, self._owns = _h5, _name or "<file>", False
        try:
            self._version = int(self._h5.attrs.get("format_version", 1))
            kind = self._h5.attrs.get("kind")
            if kind == "collection":
                subjects = list(self._h5["subjects"])
                if subject is None:
                    raise ValueError(f"{self.name}: field 'subject': expected one of {subjects} (this file is a "
                                     f"collection), got None")
                if subject not in subjects:
                    raise KeyError(f"{self.name}: field 'subject': expected one of {subjects}, got {subject!r}")
                group = self._h5["subjects"][subject]
                self.name = f"{self.name}[{subject}]"
            elif kind == "epochs":
                if subject is not None:
                    raise ValueError(f"{self.name}: field 'subject': this file holds one EpochSet, got {subject!r}")
                group = self._h5
            else:
                raise ValueError(f"{self.name}: field 'kind': expected 'epochs' or 'collection', got {kind!r}")
            self._read_group(group)
        except BaseException:
            self.close()
            raise

    def _read_group(self, group: h5py.Group) -> None:
        missing = [k for k in ("data", "ch_pos", "table") if k not in group]
        if missing:
            raise ValueError(f"{self.name}: expected datasets data, ch_pos and table, missing {missing} "
                             "(incomplete or foreign file)")
        try:
            meta = json.loads(group.attrs["meta"])
            self.sfreq = float(group.attrs["sfreq"])
            self.tmin = float(group.attrs["tmin"])
            n = int(group.attrs["n_epochs"])
            self.provenance = tuple(meta["provenance"])
            self.channels = Channels(meta["ch_names"], meta["ch_types"], group["ch_pos"][()], meta["coord_frame"],
                                     meta["ch_units"], meta["bads"], meta.get("regions"))
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{self.name}: field 'meta': expected the store's channel and timing metadata, got an "
                             f"unreadable or damaged entry ({type(err).__name__}: {err})") from None
        if not (np.isfinite(self.sfreq) and self.sfreq > 0) or not np.isfinite(self.tmin):
            raise ValueError(f"{self.name}: field 'sfreq'/'tmin': expected a positive finite sampling rate and a "
                             f"finite tmin, got {self.sfreq!r} and {self.tmin!r} (damaged or hand-edited store)")
        self.table = self._read_table(group, "table")
        self.stimuli = self._read_table(group, "stimuli") if "stimuli" in group else None
        self.data = group["data"]
        if self.data.shape[0] != n or len(self.table) != n:
            raise ValueError(f"{self.name}: field 'n_epochs': expected {n} data rows and table rows, got "
                             f"{self.data.shape[0]} and {len(self.table)}")
        self._crc = None
        if self._version >= 2:
            if "epoch_crc32" not in group or group["epoch_crc32"].shape != (n,):
                raise ValueError(f"{self.name}: field 'epoch_crc32': expected one checksum per epoch ({n}), got "
                                 f"{group['epoch_crc32'].shape[0] if 'epoch_crc32' in group else 'none'}")
            self._crc = group["epoch_crc32"][()]
        self._map_chunks()

    def _read_table(self, group: h5py.Group, key: str) -> pd.DataFrame:
        try:
            return _table_from_bytes(group[key][()])
        except Exception as err:  # pyarrow raises several kinds for damaged bytes
            raise ValueError(f"{self.name}: field '{key}': expected a Parquet table, got unreadable bytes "
                             f"({type(err).__name__}: {err})") from None

    def _verify(self, out: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """``out`` (epochs ``idx``) when their checksums match the stored ones, else :class:`CorruptStoreError`."""
        if self._crc is None or not self.verify:
            return out
        bad = np.flatnonzero(epoch_checksums(out.reshape(len(idx), *self.shape[1:])) != self._crc[idx])
        if bad.size:
            raise CorruptStoreError(
                f"{self.name}: field 'data': epoch {int(idx[bad[0]])} does not match its stored CRC-32 checksum"
                f"{f' ({bad.size} epochs damaged in this read)' if bad.size > 1 else ''}: the file was damaged after "
                "it was written (disk or copy error); restore it from a backup or write it again")
        return out

    def _map_chunks(self) -> None:
        """Locate every chunk of an unfiltered store so that epochs are read with one ``pread`` each.

        HDF5 chunks of whole epochs are plain C-ordered float32 blocks; reading them with ``os.preadv`` straight into
        the output array skips h5py's per-call overhead, reads a run of consecutive epochs in one call and maps no
        file pages into memory (see benchmarks/bench_storage.py). Compressed stores, file objects and unusual layouts
        keep the h5py path.
        """
        self._offsets: np.ndarray | None = None
        self._fd: int | None = None
        d = self.data
        path = self._h5.filename
        if (d.compression or d.shuffle or d.fletcher32 or d.chunks is None or d.dtype.str != "<f4"
                or d.chunks[1:] != d.shape[1:] or not path or not Path(path).is_file() or len(self) == 0
                or not hasattr(d.id, "chunk_iter") or not hasattr(os, "preadv")):
            return
        per = d.chunks[0]
        offsets = np.full(-(-len(self) // per), -1, dtype=np.int64)

        def visit(info: Any) -> None:
            offsets[info.chunk_offset[0] // per] = info.byte_offset

        d.id.chunk_iter(visit)
        if (offsets >= 0).all():
            self._offsets = offsets
            self._fd = os.open(path, os.O_RDONLY)
            self._layout = (len(self), per, d.shape[1], d.shape[2], 4 * d.shape[1] * d.shape[2])

    def _pread(self, out: np.ndarray, start: int) -> None:
        got = os.preadv(self._fd, [out], start)
        if got != out.nbytes:
            raise OSError(f"{self.name}: expected {out.nbytes} bytes at offset {start}, got {got} (truncated file?)")

    # ---- shape -----------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.data.shape)  # type: ignore[return-value]

    @property
    def chunk_epochs(self) -> int:
        """Number of epochs per HDF5 chunk."""
        return self.data.chunks[0]

    def __len__(self) -> int:
        return self.data.shape[0]

    def __repr__(self) -> str:
        n, c, t = self.shape
        return f"<EpochStore | {self.name}: {n} epochs × {c} channels × {t} times, {self.sfreq:g} Hz>"

    # ---- reading ---------------------------------------------------------------------------------------
    def read(self, index: Any) -> np.ndarray:
        """Read epochs by int, slice, boolean mask or integer array, in the order given.

        Returns
        -------
        ndarray, shape (n_channels, n_times) for an int, else (n_selected, n_channels, n_times)
        """
        single = isinstance(index, (int, np.integer)) and not isinstance(index, bool)
        if single and self._fd is not None:  # the hot path of a DataLoader
            n, per, n_ch, n_t, epoch_bytes = self._layout
            i = int(index)
            if not -n <= i < n:
                raise IndexError(f"index {i} out of range for {n} epochs")
            chunk, within = divmod(i % n, per)
            out = np.empty((n_ch, n_t), np.float32)
            self._pread(out, int(self._offsets[chunk]) + within * epoch_bytes)
            return self._verify(out, np.array([i % n]))
        idx = normalize_index(index, len(self))
        if self._fd is not None:
            return self._verify(self._read_direct(idx), idx)
        if single:
            return self._verify(self.data[int(idx[0])], idx)
        if idx.size == 0:
            return np.empty((0,) + self.shape[1:], np.float32)
        if isinstance(index, slice) and (index.step in (None, 1)):
            return self._verify(self.data[int(idx[0]):int(idx[-1]) + 1], idx)
        order = np.argsort(idx, kind="stable")
        uniq, inverse = np.unique(idx[order], return_inverse=True)
        block = self.data[uniq]  # h5py needs increasing unique indices
        out = np.empty((idx.size,) + self.shape[1:], np.float32)
        out[order] = block[inverse]
        return self._verify(out, idx)

    __getitem__ = read

    def _read_direct(self, idx: np.ndarray) -> np.ndarray:
        _, per, n_ch, n_t, epoch_bytes = self._layout
        out = np.empty((idx.size, n_ch, n_t), np.float32)
        if idx.size == 0:
            return out
        chunk, within = np.divmod(idx, per)
        starts = self._offsets[chunk] + within * epoch_bytes
        # one read per run of epochs that are consecutive on disk
        breaks = np.flatnonzero(np.diff(starts) != epoch_bytes) + 1
        for lo, hi in zip(np.r_[0, breaks].tolist(), np.r_[breaks, idx.size].tolist()):
            self._pread(out[lo:hi], int(starts[lo]))
        return out

    def iter_blocks(self, n_epochs: int | None = None) -> Iterator[tuple[np.ndarray, pd.DataFrame]]:
        """Iterate over consecutive blocks of epochs (default: one chunk) with their table rows."""
        step = n_epochs or self.chunk_epochs
        for start in range(0, len(self), step):
            stop = min(start + step, len(self))
            yield self.read(slice(start, stop)), self.table.iloc[start:stop].reset_index(drop=True)

    def load(self, index: Any = slice(None)) -> EpochSet:
        """Read the selected epochs (default all) into an in-memory :class:`~neurodecode.EpochSet`."""
        idx = normalize_index(index, len(self))
        data = self.read(index if isinstance(index, slice) else idx)
        return EpochSet(data, self.sfreq, self.channels, self.table.iloc[idx], self.tmin, self.provenance,
                        self.stimuli)

    def __getstate__(self) -> dict:
        """Pickled as its file name, so a ``DataLoader`` can hand it to worker processes (reopened there)."""
        path = self._h5.filename if self._h5 else None
        if not path or not Path(path).is_file():
            raise TypeError(f"{self.name}: a store opened from a file object cannot be sent to another process")
        return {"path": path, "subject": self._subject, "verify": self.verify}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"], state["subject"], verify=state.get("verify", True))

    def close(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None
        if self._owns and getattr(self, "_h5", None) is not None:
            self._h5.close()

    def __enter__(self) -> EpochStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class CollectionStore(Mapping[str, EpochStore]):
    """Lazy access to a stored EpochCollection: a mapping subject → :class:`EpochStore` over one open file."""

    def __init__(self, source: str | os.PathLike | BinaryIO) -> None:
        self._h5, self.name = _open_h5(source)
        if self._h5.attrs.get("kind") != "collection":
            kind = self._h5.attrs.get("kind")
            self._h5.close()
            raise ValueError(f"{self.name}: field 'kind': expected 'collection', got {kind!r}; use EpochStore")
        try:
            self._stores = {s: EpochStore(None, s, _h5=self._h5, _name=self.name) for s in self._h5["subjects"]}
        except BaseException:
            self._h5.close()
            raise

    def __getitem__(self, subject: str) -> EpochStore:
        try:
            return self._stores[subject]
        except KeyError:
            raise KeyError(f"{self.name}: subject {subject!r} not stored (subjects: {list(self._stores)})") from None

    def __getstate__(self) -> dict:
        return {"path": self._h5.filename}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    def __iter__(self) -> Iterator[str]:
        return iter(self._stores)

    def __len__(self) -> int:
        return len(self._stores)

    def __repr__(self) -> str:
        return f"<CollectionStore | {self.name}: {len(self)} subjects>"

    def load(self) -> EpochCollection:
        """Read every subject into memory."""
        return EpochCollection({s: st.load() for s, st in self._stores.items()})

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._h5.close()

    def __enter__(self) -> CollectionStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_store(source: str | os.PathLike | BinaryIO) -> EpochStore | CollectionStore:
    """Open a stored EpochSet (→ :class:`EpochStore`) or EpochCollection (→ :class:`CollectionStore`) lazily.

    Parameters
    ----------
    source : str, path-like or binary file object
        A store written by :func:`save` or an :class:`EpochWriter`.

    Returns
    -------
    store : EpochStore or CollectionStore
        Reads epochs on indexing (``store[idx]`` → EpochSet), verifying their checksums; close it (or use it as a
        context manager) when done."""
    h5, name = _open_h5(source)
    kind = h5.attrs.get("kind")
    h5.close()
    if isinstance(source, (str, os.PathLike)) is False and hasattr(source, "seek"):
        source.seek(0)
    if kind == "collection":
        return CollectionStore(source)
    if kind == "epochs":
        return EpochStore(source)
    raise ValueError(f"{name}: field 'kind': expected 'epochs' or 'collection', got {kind!r}")


def load(path: str | os.PathLike | BinaryIO, subject: str | None = None) -> EpochSet | EpochCollection:
    """Read a stored EpochSet or EpochCollection into memory — the one eager reader of stores (:func:`open_store`
    is the lazy one). With ``subject``: that subject's EpochSet of a collection file (only its data are read); a
    single-set file has no subjects to choose from.

    Parameters
    ----------
    path : str, path-like or binary file object
        A store written by :func:`save` or an :class:`EpochWriter`.
    subject : str or None
        For a collection file: read only this subject.

    Returns
    -------
    epochs : EpochSet or EpochCollection
        As saved; every epoch's checksum is verified.

    Raises
    ------
    ValueError
        Naming the file and the field for a damaged, foreign or hand-edited store (sizes, metadata, sampling rate).
    CorruptStoreError
        When an epoch's data do not match its stored checksum (a subclass of ValueError)."""
    if subject is None:
        with open_store(path) as store:
            return store.load()
    with EpochStore(path, subject) as store:
        return store.load()


def read_epochs(path: str | os.PathLike, subject: str | None = None) -> EpochSet:
    """Deprecated (0.3; the name is MNE's ``read_epochs``): ``neurodecode.load(path, subject)``."""
    import warnings

    warnings.warn("neurodecode.read_epochs is deprecated (mne.read_epochs reads another format); use "
                  "neurodecode.load(path, subject)", FutureWarning, stacklevel=2)
    with EpochStore(path, subject) as store:
        return store.load()
