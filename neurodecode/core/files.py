"""Writing files and folders so that nothing is lost: one writer per path, complete-or-nothing, the old one kept
until the new one is whole, the process's umask respected, a full disk reported before it corrupts anything.

* :class:`WriteLock` — an exclusive lock for a target path (``fcntl.flock`` on ``.<name>.lock`` beside it): a second
  writer of the same path fails at once, naming the path and the holder's pid; the lock dies with its process.
* :func:`publish_file` — moves a finished temporary file to its final name: ``os.replace`` with ``overwrite``,
  otherwise a hard link that fails if the name exists (so no writer, locked or not, is ever overwritten).
* :func:`publish_dir` — the same for a folder: an existing one is moved aside, the new one renamed into place, the
  old one removed — a kill in between leaves the old folder complete under a ``.<name>.old-*`` name, which
  :func:`interrupted_replacement` finds: the next writer puts it back (:func:`restore_interrupted`) and the
  checkpoint loader reads it, with a warning, until then.
* :class:`OutputFolder` — a command's output folder written all-or-nothing: locked for one writer, the outputs
  made in a hidden staging folder beside it and moved in only when the command succeeds (a killed run leaves
  nothing in the folder, and its staging folder is removed by the next run), the earlier run's outputs replaced only
  with ``overwrite`` — and then all of them, so no stale file of an earlier run stays beside the new report.
* :func:`permissions` — the mode a new file or folder would get from the umask (``mkstemp``/``mkdtemp`` create
  0600/0700 whatever the umask).
* :func:`check_free_space` — an ``OSError`` (ENOSPC) naming the path when the disk cannot hold what is about to be
  written.

Imports nothing from neurodecode.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["OutputFolder", "WriteLock", "check_free_space", "interrupted_replacement", "permissions", "publish_dir",
           "publish_file", "restore_interrupted", "temporary_dir", "temporary_file"]

#: room kept free besides the bytes about to be written (metadata, the file system's own needs)
FREE_SPACE_MARGIN = 1 << 20


def permissions(directory: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def check_free_space(path: str | os.PathLike, n_bytes: int) -> None:
    """Raise ``OSError(ENOSPC)`` naming ``path`` when its file system has less than ``n_bytes`` (+ a margin) free."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if free < n_bytes + FREE_SPACE_MARGIN:
        raise OSError(errno.ENOSPC, f"{path}: not enough disk space: {n_bytes / 1e6:.1f} MB to write, "
                                    f"{free / 1e6:.1f} MB free; nothing was replaced")


class WriteLock:
    """An exclusive, process-held lock on ``path`` (the lock file is ``.<name>.lock`` beside it).

    Raises ``FileExistsError`` naming the path and the holding process when another writer has it. The lock is
    released by ``release`` or when the process ends (even by SIGKILL).
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import fcntl

        self.path = Path(path)
        self.lock_path = self.path.with_name(f".{self.path.name}.lock")
        while True:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, permissions())
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise FileExistsError(f"{self.path}: being written by another process (pid {holder}); wait for it "
                                      "to finish or write elsewhere") from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:                  # not a lock file that its previous holder unlinked while we waited
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.lock_path)
        except FileNotFoundError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def temporary_file(path: Path, suffix: str = ".tmp") -> Path:
    """A new, uniquely named file beside ``path`` with the umask's permissions."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, permissions())
    return Path(tmp)


def temporary_dir(path: Path) -> Path:
    """A new, uniquely named folder beside ``path`` with the umask's permissions."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, permissions(directory=True))
    return tmp


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_file(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished file ``tmp`` its final name ``path`` (refusing an existing one unless ``overwrite``)."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)            # atomic and fails when the name exists, even if created a moment ago
        except FileExistsError:
            tmp.unlink(missing_ok=True)
            raise FileExistsError(f"{path}: file exists; pass overwrite=True to replace it") from None
        tmp.unlink()
    _fsync_dir(path.parent)


def interrupted_replacement(path: Path) -> list[Path]:
    """Complete old folders left beside ``path`` by a replacement that was killed between its two renames, oldest
    first (the last one is the most recent)."""
    return sorted(path.parent.glob(f".{path.name}.old-*"), key=lambda p: p.stat().st_mtime_ns)


def _settle(folder: Path) -> None:
    """Give a finished folder and everything in it the umask's permissions (some writers, e.g. safetensors, create
    0600 files) and flush its files to disk, before it is published."""
    for sub in [folder, *folder.rglob("*")]:
        os.chmod(sub, permissions(directory=sub.is_dir()))
        if sub.is_file():
            with open(sub, "rb") as fh:
                os.fsync(fh.fileno())


def restore_interrupted(path: Path) -> Path | None:
    """Put back the complete old folder that a replacement killed between its two renames left beside ``path``
    (``.<name>.old-*``), when ``path`` itself is missing; the caller holds ``path``'s :class:`WriteLock`, so no
    replacement is running. Older leftovers are removed. Returns the restored path, or None."""
    left = interrupted_replacement(path)
    if not left or path.exists():
        return None
    left[-1].rename(path)                     # the most recent
    for other in left[:-1]:
        shutil.rmtree(other, ignore_errors=True)
    _fsync_dir(path.parent)
    return path


def publish_dir(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished folder ``tmp`` its final name ``path``: an existing folder (with ``overwrite``) is moved
    aside first and removed only once the new one is in place. A folder a killed replacement left aside is put back
    first (:func:`restore_interrupted`), so ``overwrite=False`` still refuses to replace it."""
    restore_interrupted(path)
    _settle(tmp)
    old = None
    if path.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{path}: already there; pass overwrite=True to replace it")
        old = path.with_name(f".{path.name}.old-{uuid.uuid4().hex[:8]}")
        path.rename(old)
    tmp.rename(path)
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


class OutputFolder:
    """The output folder of a command, written all-or-nothing and by one process at a time.

    >>> with OutputFolder("results", overwrite=False) as staging:     # doctest: +SKIP
    ...     (staging / "report.html").write_text(html)

    ``__enter__`` takes the folder's :class:`WriteLock` (a second writer fails at once, naming the holder), removes
    the staging folders of killed runs, refuses a folder that holds an earlier run's outputs unless ``overwrite``,
    and returns a fresh, hidden staging folder beside it (same file system). On success ``__exit__`` moves every
    entry of the staging folder into the folder (``marker`` last, so its presence means a complete run), removes the
    earlier run's outputs this run did not make again, and records the entries in ``.neurodecode-outputs.json``; on
    an error it removes the staging folder and leaves the folder as it was. Files of the user's own in the folder
    are kept; one that an output would replace is an error unless ``overwrite``.

    Parameters
    ----------
    path : str or Path
        The output folder (created when missing).
    overwrite : bool
        Replace an earlier run's outputs (and same-named files).
    marker : str
        The entry published last (e.g. ``report.html``).
    """

    MANIFEST = ".neurodecode-outputs.json"

    def __init__(self, path: str | os.PathLike, *, overwrite: bool = False, marker: str | None = None) -> None:
        self.path = Path(path)
        self.overwrite = overwrite
        self.marker = marker
        self.staging: Path | None = None
        self._lock: WriteLock | None = None

    def _earlier(self) -> list[str]:
        import json

        manifest = self.path / self.MANIFEST
        if not manifest.is_file():
            return []
        try:
            names = json.loads(manifest.read_text())["entries"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{manifest}: field 'entries': expected the list of an earlier run's outputs, got an "
                             f"unreadable file ({err}); remove it by hand") from None
        if not isinstance(names, list) or not all(isinstance(n, str) and n and "/" not in n and n not in (".", "..")
                                                  for n in names):
            raise ValueError(f"{manifest}: field 'entries': expected plain file names, got {names!r}")
        return names

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"{self.path}: expected an output folder, got a file")
        self._lock = WriteLock(self.path)
        try:
            for stale in self.path.parent.glob(f".{self.path.name}.*.staging"):   # killed runs (we hold the lock)
                shutil.rmtree(stale, ignore_errors=True)
            earlier = self._earlier()
            if earlier and not self.overwrite:
                raise FileExistsError(f"{self.path}: holds an earlier run's outputs ({', '.join(earlier[:6])}"
                                      f"{', ...' if len(earlier) > 6 else ''}); choose another folder or overwrite")
            self.staging = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".staging",
                                                 dir=self.path.parent))
            os.chmod(self.staging, permissions(directory=True))
        except BaseException:
            self._lock.release()
            raise
        return self.staging

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self._publish()
        finally:
            if self.staging is not None:
                shutil.rmtree(self.staging, ignore_errors=True)
            if self._lock is not None:
                self._lock.release()

    def _publish(self) -> None:
        import json

        assert self.staging is not None
        new = sorted(p.name for p in self.staging.iterdir())
        earlier = self._earlier()
        clash = [n for n in new if (self.path / n).exists() and n not in earlier]
        if clash and not self.overwrite:
            raise FileExistsError(f"{self.path}: {clash[:6]} already there and not from an earlier run; nothing was "
                                  "written (choose another folder or overwrite)")
        _settle(self.staging)
        self.path.mkdir(exist_ok=True)
        if self.marker and (self.path / self.marker).exists():
            _remove(self.path / self.marker)              # an incomplete-looking folder until the new marker lands
        for name in earlier:
            if name not in new:
                _remove(self.path / name)
        order = [n for n in new if n != self.marker] + [n for n in new if n == self.marker]
        tmp = temporary_file(self.path / self.MANIFEST)
        tmp.write_text(json.dumps({"entries": new}))
        publish_file(tmp, self.path / self.MANIFEST, overwrite=True)
        for name in order:
            target = self.path / name
            if target.exists() and (target.is_dir() or (self.staging / name).is_dir()):
                _remove(target)
            os.replace(self.staging / name, target)
        _fsync_dir(self.path)
