"""Dataset manifests (``data_manifests/*.yaml``): where a public data set lives, its license and file checksums.

Files are fetched with pooch (resumable, checked against the manifest's sha256) into
``$NEURODECODE_CACHE`` (default ``~/.cache/neurodecode``). Local copies are verified the same way before use.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

__all__ = ["MANIFEST_DIR", "cache_dir", "fetch_file", "load_manifest", "sha256", "verify_file"]

#: The folder holding the manifests (in the source tree, beside the package).
MANIFEST_DIR = Path(__file__).resolve().parents[1] / "data_manifests"


def load_manifest(name: str) -> dict[str, Any]:
    """Read ``data_manifests/<name>.yaml`` as a plain dict."""
    path = MANIFEST_DIR / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"{path}: no manifest named {name!r} (known: {known}); neurodecode must be "
                                "installed from its source tree (pip install -e .) to find data_manifests/")
    manifest = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    for key in ("name", "base_url", "files"):
        if key not in manifest:
            raise ValueError(f"{path}: field {key!r}: expected in every manifest, missing")
    return manifest


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
    return Path(os.environ.get("NEURODECODE_CACHE", Path.home() / ".cache" / "neurodecode"))


def fetch_file(manifest: dict[str, Any], relpath: str) -> Path:
    """Download one file of a manifest into the cache (resuming, checksum-verified) and return its path."""
    import pooch

    if relpath not in manifest["files"]:
        raise KeyError(f"manifest {manifest['name']!r}: field 'files': expected one of "
                       f"{sorted(manifest['files'])}, got {relpath!r}")
    dest = cache_dir() / manifest["name"]
    try:
        path = pooch.retrieve(manifest["base_url"] + relpath, known_hash=f"sha256:{manifest['files'][relpath]}",
                              fname=relpath.replace("/", "_"), path=dest, progressbar=False)
    except Exception as err:  # pooch raises requests/OS errors of many kinds
        raise ConnectionError(f"could not download {manifest['base_url'] + relpath} for manifest "
                              f"{manifest['name']!r} into {dest}: {err}. Offline? Put the file there by hand or "
                              "point the data_dir option at a local copy.") from None
    return Path(path)
