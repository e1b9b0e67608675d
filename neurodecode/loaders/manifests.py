"""Dataset manifests (``data_manifests/*.yaml``): where a public data set lives, its license, subjects, sampling
rates, event mapping, loader recipe and file checksums.

Files are fetched with pooch into ``$NEURODECODE_CACHE/<name>`` (default ``~/.cache/neurodecode``) and checked:

* against the manifest's ``sha256`` where it pins one;
* against the data set's own checksum list (``checksums: {file: MD5SUMS, algorithm: md5}``) where it publishes one;
* otherwise **trust on first use**: the first download's sha256 is recorded in ``<dest>/SHA256SUMS`` (and said so),
  and every later fetch or use verifies the file against that record.

Fetching is resumable per file: files already there and verified are not downloaded again; an interrupted file is
downloaded again from the start (pooch writes to a temporary file, so a partial file never counts as done).
Data sets that offer no direct file URLs (``download: manual``) are described with where to get them; ``fetch``
then verifies (or records) the files placed in the destination folder.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from neurodecode.core.configs import resource_dir
from neurodecode.core.logs import logger

__all__ = ["MANIFEST_DIR", "cache_dir", "describe_manifest", "fetch_dataset", "fetch_file", "list_manifests",
           "load_manifest", "sha256", "verify_file"]

#: The folder holding the manifests (``data_manifests/``, shipped as ``neurodecode.data_manifests``).
MANIFEST_DIR = resource_dir("neurodecode.data_manifests")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(f"{where}: field 'name': expected a data-set name of letters, digits, '_', '.' and '-' "
                         f"(it names a folder), got {name!r}")
    return name


def _check_relpath(rel: Any, where: str) -> str:
    """``rel`` when it is a relative path without ``..`` (a manifest's file name), else a ValueError."""
    from pathlib import PurePosixPath

    if not isinstance(rel, str) or not rel or "\\" in rel:
        raise ValueError(f"{where}: field 'files': expected relative file paths, got {rel!r}")
    parts = PurePosixPath(rel)
    if parts.is_absolute() or ".." in parts.parts or rel.startswith("~"):
        raise ValueError(f"{where}: field 'files': expected a path inside the download folder, got {rel!r} (absolute "
                         "paths and '..' are refused)")
    return rel


def safe_path(dest: Path, rel: Any, where: str) -> Path:
    """``dest / rel`` when ``rel`` is a relative path that stays inside ``dest`` (no absolute path, no ``..``, no
    symlink out), else a ValueError naming the manifest and the file."""
    target = dest / _check_relpath(rel, where)
    root = dest.resolve()
    if not target.resolve().is_relative_to(root):
        raise ValueError(f"{where}: field 'files': {rel!r} resolves to {target.resolve()}, outside {root} (a symlink "
                         "out of the download folder)")
    return target


def load_manifest(name: str) -> dict[str, Any]:
    """Read ``data_manifests/<name>.yaml`` as a plain dict, with every file path checked to stay inside its folder."""
    _check_name(name, "neurodecode data")
    path = MANIFEST_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no manifest named {name!r} (known: {known})")
    try:
        manifest = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:  # yaml / omegaconf errors of several kinds
        raise ValueError(f"{path}: not a readable YAML manifest: {err}") from None
    for key in ("name", "title", "modality", "license", "files"):
        if key not in manifest:
            raise ValueError(f"{path}: field {key!r}: expected in every manifest, missing")
    if manifest.get("download", "direct") == "direct" and not manifest.get("base_url"):
        raise ValueError(f"{path}: field 'base_url': expected for a data set downloaded directly "
                         "(or download: manual), missing")
    if not isinstance(manifest["files"], dict):
        raise ValueError(f"{path}: field 'files': expected a mapping relative path → sha256 (or null), got "
                         f"{type(manifest['files']).__name__}")
    _check_name(manifest["name"], str(path))
    listed = list(manifest["files"]) + [v for v in [(manifest.get("checksums") or {}).get("file")] if v]
    for rel in listed:
        _check_relpath(rel, str(path))
    return manifest


def list_manifests() -> list[dict[str, Any]]:
    """Every manifest in ``data_manifests/``, by name."""
    return [load_manifest(p.stem) for p in sorted(MANIFEST_DIR.glob("*.yaml"))]


def describe_manifest(name: str) -> str:
    """A readable description of one data set (``neurodecode data info NAME``)."""
    m = load_manifest(name)
    pinned = sum(v is not None for v in m["files"].values())
    lines = [f"{m['name']}: {m['title']}", f"  modality: {m['modality']}", f"  license: {m['license']}"]
    for key in ("homepage", "n_subjects", "sfreq", "channels", "format", "size", "access"):
        if m.get(key) is not None:
            lines.append(f"  {key}: {m[key]}")
    if m.get("events"):
        lines.append(f"  events: {m['events']}")
    if m.get("loader"):
        lines.append(f"  loader: {m['loader']}")
    how = m.get("download", "direct")
    lines.append(f"  download: {how}" + (f" from {m['base_url']}" if m.get("base_url") else ""))
    if how == "manual" and m.get("instructions"):
        lines.append(f"  instructions: {m['instructions']}")
    check = m.get("checksums", {}).get("file")
    lines.append(f"  files: {len(m['files'])} listed, {pinned} with a pinned sha256"
                 + (f", others checked against the data set's {check}" if check else
                    ", others trusted on first use (sha256 recorded in SHA256SUMS)" if pinned < len(m["files"])
                    else ""))
    if m.get("citation"):
        lines.append(f"  citation: {m['citation']}")
    return "\n".join(lines)


def sha256(path: str | os.PathLike, block: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: str | os.PathLike, expected: str) -> None:
    """Raise ``ValueError`` naming the file when its sha256 differs from ``expected``."""
    got = sha256(path)
    if got != expected:
        raise ValueError(f"{path}: field 'sha256': expected {expected} (from the manifest), got {got}; the file is "
                         "corrupt or a different version")


def cache_dir() -> Path:
    """Where downloads go: ``$NEURODECODE_CACHE``, else ``~/.cache/neurodecode``."""
    return Path(os.environ.get("NEURODECODE_CACHE", Path.home() / ".cache" / "neurodecode"))


def _downloader(url: str, output_file: Any, pooch_obj: Any, check_only: bool = False) -> Any:
    """pooch's downloader for the URL's scheme, with ``file://`` (local mirrors, tests) copied directly."""
    import shutil
    from urllib.parse import unquote, urlparse

    import pooch

    if url.startswith("file://"):
        src = Path(unquote(urlparse(url).path))
        if check_only:
            return src.is_file()
        if not src.is_file():
            raise FileNotFoundError(f"{src}: no such file (from {url})")
        if hasattr(output_file, "write"):
            with open(src, "rb") as fh:
                shutil.copyfileobj(fh, output_file)
        else:
            shutil.copyfile(src, output_file)
        return None
    return pooch.downloaders.choose_downloader(url, progressbar=True)(url, output_file, pooch_obj,
                                                                      check_only=check_only)


def _read_sums(path: Path) -> dict[str, str]:
    sums = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                digest, name = line.split(None, 1)
                sums[name.strip().lstrip("*")] = digest
    return sums


def fetch_dataset(name: str, patterns: Sequence[str] | None = None, dest: str | os.PathLike | None = None
                  ) -> list[Path]:
    """Download (or verify) the files of a manifest matching glob ``patterns`` (default all) into ``dest``.

    Returns the local paths. Offline or on a failed download: ``ConnectionError`` naming the URL and the folder;
    a checksum mismatch: ``ValueError`` naming the file, the expected and the computed digest.
    """
    import fnmatch

    m = load_manifest(name)
    files = list(m["files"])
    if patterns:
        files = [f for f in files if any(fnmatch.fnmatch(f, p) for p in patterns)]
        if not files:
            raise ValueError(f"manifest {name!r}: field 'files': no file matches {list(patterns)}; known: "
                             f"{sorted(m['files'])[:10]}")
    dest = Path(dest) if dest is not None else cache_dir() / m["name"]
    dest.mkdir(parents=True, exist_ok=True)
    record = dest / "SHA256SUMS"
    recorded = _read_sums(record)
    upstream: dict[str, str] = {}
    check = m.get("checksums") or {}
    manual = m.get("download", "direct") == "manual"
    if check.get("file") and not manual:
        sums_path = _retrieve(m, check["file"], dest, None)
        upstream = _read_sums(sums_path)
    out = []
    for rel in files:
        local = safe_path(dest, rel, f"manifest {name!r}")
        pinned = m["files"][rel]
        digest = None
        if manual:                      # placed by hand: checked here
            if not local.is_file():
                raise FileNotFoundError(f"{local}: missing. {m['name']} is not downloadable file by file; "
                                        f"{m.get('instructions', 'see ' + str(m.get('homepage')))} Put the files "
                                        f"under {dest} and run `neurodecode data fetch {name}` again to verify them.")
            digest = sha256(local)
            if pinned and digest != pinned:
                raise ValueError(f"{local}: field 'sha256': expected {pinned} (from the manifest), got {digest}")
            if not pinned and rel in recorded and recorded[rel] != digest:
                raise ValueError(f"{local}: field 'sha256': expected {recorded[rel]} (recorded in {record} at the "
                                 f"first download), got {digest}; the file changed")
        else:                           # downloaded: pooch checks the pinned, upstream or recorded digest
            algo = check.get("algorithm", "md5")
            known = (f"sha256:{pinned}" if pinned else f"{algo}:{upstream[rel]}" if rel in upstream
                     else f"sha256:{recorded[rel]}" if rel in recorded else None)
            local = _retrieve(m, rel, dest, known)
        if not pinned and rel not in recorded:
            digest = digest or sha256(local)
            recorded[rel] = digest
            with open(record, "a") as fh:
                fh.write(f"{digest}  {rel}\n")
            logger.warning(f"{local}: no checksum pinned by the manifest; sha256 {digest[:12]}… recorded in {record} "
                           "(trust on first use)")
        out.append(local)
    return out


def _retrieve(m: dict[str, Any], rel: str, dest: Path, known_hash: str | None) -> Path:
    """One file of a manifest into ``dest/rel`` through pooch (skipped when present and matching)."""
    import pooch

    url = m["base_url"] + rel
    target = safe_path(dest, rel, f"manifest {m['name']!r}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return Path(pooch.retrieve(url, known_hash=known_hash, fname=target.name, path=target.parent,
                                   downloader=_downloader, progressbar=False))
    except ValueError as err:   # pooch's hash mismatch
        raise ValueError(f"{target}: checksum mismatch for {url}: {err}") from None
    except Exception as err:  # requests / OS errors of many kinds
        raise ConnectionError(f"could not download {url} for data set {m['name']!r} into {target.parent}: {err}. "
                              "Offline? Put the file there by hand and run the command again to verify it.") from None


def fetch_file(manifest: dict[str, Any], relpath: str) -> Path:
    """Download one file of a manifest (with a pinned sha256) into the cache, checked, and return its path."""
    if relpath not in manifest["files"]:
        raise KeyError(f"manifest {manifest['name']!r}: field 'files': expected one of "
                       f"{sorted(manifest['files'])}, got {relpath!r}")
    return _retrieve(manifest, relpath, cache_dir() / manifest["name"], f"sha256:{manifest['files'][relpath]}")
