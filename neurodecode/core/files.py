"""Writing files and folders so that nothing is lost: one writer per path, complete-or-nothing, the old one kept
until the new one is whole, the process's umask respected, a full disk reported before it corrupts anything.

* :class:`WriteLock` — an exclusive lock for a target path (``fcntl.flock`` on ``.<name>.lock`` beside it): a second
  writer of the same path fails at once, naming the path and the holder's pid; the lock dies with its process.
* :func:`publish_file` — moves a finished temporary file to its final name: ``os.replace`` with ``overwrite``,
  otherwise a hard link that fails if the name exists (so no writer, locked or not, is ever overwritten).
* :func:`publish_dir` — the same for a folder: an existing one is moved aside, the new one renamed into place, the
  old one removed — a kill in between leaves the old folder complete under a ``.<name>.old-*`` name, which
  :func:`interrupted_replacement` finds and the loaders name in their error.
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

__all__ = ["WriteLock", "check_free_space", "interrupted_replacement", "permissions", "publish_dir", "publish_file",
           "temporary_dir", "temporary_file"]

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
    """Complete old folders left beside ``path`` by a replacement that was killed between its two renames."""
    return sorted(path.parent.glob(f".{path.name}.old-*"))


def publish_dir(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished folder ``tmp`` its final name ``path``: an existing folder (with ``overwrite``) is moved
    aside first and removed only once the new one is in place."""
    for sub in [tmp, *tmp.rglob("*")]:
        os.chmod(sub, permissions(directory=sub.is_dir()))   # some writers (safetensors) create 0600 files
        if sub.is_file():
            with open(sub, "rb") as fh:
                os.fsync(fh.fileno())
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
