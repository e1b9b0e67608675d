"""A simulated fMRI subject for the built-in demo: real images through a known encoding model plus realistic noise.

The images are scikit-learn's handwritten digits (1,797 real 8 × 8 scans, shipped with scikit-learn, so nothing is
downloaded), upsampled to ``image_size`` pixels. Each voxel has a population receptive field (pRF) — a 2D Gaussian
whose size grows with eccentricity, as in early visual cortex — and responds with compressive spatial summation
(Kay et al. 2013: ``gain · (Σ image · pRF)^exponent``). The noise is Gaussian, spatially correlated between voxels
that sit close on the simulated cortical sheet, and scaled per voxel to a chosen signal-to-noise ratio. The subject
is **simulated**: the epochs' provenance says so, and so does every report made from them.

``simulated_meg_subject`` is the MEG counterpart: the same digits drive visual "sources" whose sensor
topographies are the real spatial components of an MEG recording's evoked responses (real sensor positions, types
and units), with a per-subject mixing so that subjects differ, an evoked time course per source, and spatially
correlated noise.

:func:`planted_subjects` is the synthetic check of cross-subject models: subjects that see the same stimuli through
different random voxel mixings of one planted latent.

:func:`simulated_epochs` is labelled EEG-like epochs of several subjects with a planted class effect (the power of a
rhythm over some channels), channel positions and a full per-epoch table — the shared fixture of the test suite's
estimator checks, and a quick way to try a recipe.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet

__all__ = ["DIGIT_NAMES", "digit_images", "planted_subjects", "simulated_epochs", "simulated_subject"]

DIGIT_NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def digit_images(image_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits, upsampled: images (1797, image_size, image_size) in [0, 1] and labels (1797,)."""
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    img = torch.as_tensor(digits.images / 16.0, dtype=torch.float32)[:, None]
    if image_size != 8:
        img = torch.nn.functional.interpolate(img, size=(image_size, image_size), mode="bilinear",
                                              align_corners=False)
    return img[:, 0].clamp(0, 1).numpy(), digits.target.astype(int)


def simulated_subject(n_train: int = 600, n_test: int = 50, n_voxels: int = 400, image_size: int = 16,
                      snr: float = 0.8, exponent: float = 0.5, noise_length: float = 0.004, tr: float = 1.6,
                      n_runs: int = 10, subject: str = "sim-01", seed: int = 0) -> EpochSet:
    """Single-trial responses of a simulated visual-cortex subject to real handwritten digits.

    Parameters
    ----------
    n_train, n_test : int
        Distinct images shown once each; the table's ``split`` column says which are held out.
    n_voxels : int
        Voxels (channels of type ``fmri-voxel``), placed on a flat 3 × 3 cm simulated cortical sheet by their pRF
        centres (retinotopy), coordinate frame ``unknown``.
    snr : float
        Standard deviation across stimuli of each voxel's noiseless response over that of its noise.
    exponent : float
        Compressive spatial summation exponent (1: linear pRF).
    noise_length : float
        Length scale in metres of the noise correlation between voxels (exponential in distance).
    tr, n_runs, subject, seed :
        Sampling rate is ``1 / tr``; trials are spread over ``n_runs`` runs in a seeded random order.

    Returns
    -------
    EpochSet
        data (n_train + n_test, n_voxels, 1); table with ``stimulus`` (``digit-<index>``), ``label`` (the digit),
        ``split`` (train/test), ``run``; stimuli with ``pixels`` (flattened row by row), ``height``, ``width``,
        ``caption`` ("a handwritten seven") and ``label``; provenance ``{"step": "simulate", ...}``.
    """
    images, labels = digit_images(image_size)
    n = n_train + n_test
    if not 0 < n <= len(images):
        raise ValueError(f"field 'n_train + n_test': expected 1..{len(images)} (scikit-learn's digits), got {n}")
    for name, value in (("n_train", n_train), ("n_test", n_test), ("n_voxels", n_voxels), ("snr", snr)):
        if not value > 0:
            raise ValueError(f"field '{name}': expected a positive value, got {value}")
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(images))[:n]
    img, lab = images[pick], labels[pick]

    # pRFs: centres uniform in the visual field [-1, 1]², size growing with eccentricity
    centre = rng.uniform(-1, 1, size=(n_voxels, 2))
    sigma = 0.08 + 0.25 * np.linalg.norm(centre, axis=1) / np.sqrt(2)
    grid = np.linspace(-1, 1, image_size)
    gx, gy = np.meshgrid(grid, -grid)                            # row 0 = top of the image
    prf = np.exp(-((gx[None] - centre[:, 0, None, None]) ** 2 + (gy[None] - centre[:, 1, None, None]) ** 2)
                 / (2 * sigma[:, None, None] ** 2))
    prf /= prf.sum(axis=(1, 2), keepdims=True)
    drive = np.einsum("nhw,vhw->nv", img, prf)
    gain = rng.lognormal(0.0, 0.3, size=n_voxels)
    signal = gain * np.power(drive, exponent)

    # spatially correlated noise on the cortical sheet (1.5 cm per visual-field unit)
    pos = np.column_stack([centre * 0.015, np.zeros(n_voxels)])
    dist = np.linalg.norm(pos[:, None] - pos[None], axis=-1)
    chol = np.linalg.cholesky(np.exp(-dist / noise_length) + 1e-6 * np.eye(n_voxels))
    noise = rng.standard_normal((n, n_voxels)) @ chol.T
    noise *= signal.std(0) / snr
    data = (signal - signal.mean(0) + noise).astype(np.float32)[:, :, None]

    split = np.array(["train"] * n_train + ["test"] * n_test)
    run = rng.permutation(np.arange(n) % n_runs) + 1
    ids = [f"digit-{i}" for i in pick]
    table = pd.DataFrame({"subject": subject, "session": "1", "run": run.astype(str), "stimulus": ids,
                          "label": [str(v) for v in lab], "split": split, "onset": np.nan})
    stimuli = pd.DataFrame({"stimulus": ids, "pixels": list(img.reshape(n, -1).astype(np.float32)),
                            "height": image_size, "width": image_size,
                            "caption": [f"a handwritten {DIGIT_NAMES[v]}" for v in lab],
                            "label": [str(v) for v in lab]})
    channels = Channels([f"v{i:04d}" for i in range(n_voxels)], "fmri-voxel", pos, "unknown")
    params: dict[str, Any] = {"n_train": n_train, "n_test": n_test, "n_voxels": n_voxels, "image_size": image_size,
                              "snr": snr, "exponent": exponent, "noise_length": noise_length, "seed": seed}
    provenance = [{"step": "simulate", "model": "pRF + compressive spatial summation + correlated noise",
                   "images": "sklearn.datasets.load_digits", "note": "SIMULATED subject, not a recording", **params}]
    return EpochSet(data, 1.0 / tr, channels, table, 0.0, provenance, stimuli)


def _evoked_topographies(sensors: str, sfreq: float, picks: str) -> tuple[Any, np.ndarray]:
    """The MEG channels' info (at ``sfreq``) of a FIF file's evoked responses and their spatial components
    (n_channels, n_components), scaled by their singular values (real units: T for magnetometers, T/m for
    gradiometers). Read once per (file, modification time, rate, picks); copies are returned."""
    import os

    stamp = os.stat(sensors).st_mtime_ns if os.path.isfile(sensors) else None
    info, topo = _read_topographies(str(sensors), stamp, float(sfreq), picks)
    return info.copy(), topo.copy()


@functools.lru_cache(maxsize=4)
def _read_topographies(sensors: str, stamp: int | None, sfreq: float, picks: str) -> tuple[Any, np.ndarray]:
    from pathlib import Path

    import mne

    path = Path(sensors)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: field 'sensors': expected a FIF file of evoked responses with MEG sensors "
                                "(e.g. ../shared/data/mne_small/test-ave.fif.gz)")
    evokeds = mne.read_evokeds(path, verbose="error")
    kinds = {"meg": "meg", "mag": "mag", "grad": "grad"}
    if picks not in kinds:
        raise ValueError(f"field 'picks': expected one of {sorted(kinds)}, got {picks!r}")
    evokeds = [e.copy().pick(kinds[picks], exclude="bads") for e in evokeds]
    if not len(evokeds[0].ch_names):
        raise ValueError(f"{path}: field 'sensors': expected MEG channels ({picks}), got none")
    U, S, _ = np.linalg.svd(np.concatenate([e.data for e in evokeds], axis=1), full_matrices=False)
    info = evokeds[0].copy().resample(sfreq, verbose="error").info
    return info, U * S / np.sqrt(sum(e.data.shape[1] for e in evokeds))


def _source_drive(img: np.ndarray, n_sources: int, rng: np.random.Generator) -> np.ndarray:
    """Standardised responses (n_images, n_sources) of sources with Gaussian receptive fields (σ 0.3 of the half
    field) and compressive summation (square root) to images (n_images, size, size)."""
    centre = rng.uniform(-1, 1, size=(n_sources, 2))
    grid = np.linspace(-1, 1, img.shape[1])
    gx, gy = np.meshgrid(grid, -grid)
    rf = np.exp(-((gx[None] - centre[:, 0, None, None]) ** 2 + (gy[None] - centre[:, 1, None, None]) ** 2)
                / (2 * 0.3 ** 2))
    drive = np.sqrt(np.einsum("nhw,khw->nk", img, rf / rf.sum(axis=(1, 2), keepdims=True)))
    return (drive - drive.mean(0)) / drive.std(0).clip(1e-12)


def simulated_meg_subject(sensors: str, n_subjects: int = 2, n_train: int = 300, n_test: int = 50,
                          sfreq: float = 120.0, tmin: float = -0.1, tmax: float = 0.5, n_sources: int = 32,
                          n_topographies: int = 12, snr: float = 0.5, image_size: int = 16, picks: str = "meg",
                          seed: int = 0) -> EpochSet:
    """Simulated MEG subjects seeing handwritten digits, on the real sensors of an evoked FIF file.

    Each of ``n_sources`` visual sources has a Gaussian receptive field on the image (as the fMRI subject's pRFs)
    and responds with compressive summation, following an evoked time course (a Gaussian bump with its own latency,
    80-250 ms, and width); its sensor topography is a mixture of the ``n_topographies`` strongest spatial components
    of the file's evoked responses, mixed differently for each subject. Noise: the same components with random time
    courses plus sensor noise, smoothed over ~25 ms, scaled per channel to ``snr`` (signal / noise variance).

    Parameters
    ----------
    sensors : path
        A FIF file of evoked responses (``mne.read_evokeds``) whose MEG channels give names, types, positions and
        units (e.g. MNE's sample evoked).
    n_subjects, n_train, n_test : int
        Every subject sees the same ``n_train`` training and ``n_test`` held-out digits (in its own order).
    sfreq, tmin, tmax : float
        Epochs' rate (Hz) and window (s, stimulus onset at 0). ``picks``: "meg", "mag" or "grad".

    Returns
    -------
    EpochSet
        data (n_subjects · (n_train + n_test), n_channels, n_times) in T / T/m; table ``subject`` (``sim-meg-01``,
        ...), ``session``, ``run``, ``stimulus``, ``label``, ``split``; stimuli with ``pixels``, ``caption``;
        provenance says it is simulated.
    """
    import mne
    from scipy.ndimage import uniform_filter1d

    from neurodecode.core.epochs import concatenate
    from neurodecode.core.mne_convert import from_mne

    for name, value in (("n_subjects", n_subjects), ("n_train", n_train), ("n_test", n_test), ("snr", snr),
                        ("n_sources", n_sources), ("n_topographies", n_topographies)):
        if not value > 0:
            raise ValueError(f"field '{name}': expected a positive value, got {value}")
    info, topo = _evoked_topographies(sensors, sfreq, picks)
    topo = topo[:, :n_topographies]
    rng = np.random.default_rng(seed)
    images, labels = digit_images(image_size)
    pick = rng.permutation(len(images))[:n_train + n_test]
    img, lab = images[pick], labels[pick]
    drive = _source_drive(img, n_sources, rng)                             # (n_stimuli, n_sources)
    times = np.arange(int(round(tmin * sfreq)), int(round(tmax * sfreq)) + 1) / sfreq
    latency, width = rng.uniform(0.08, 0.25, n_sources), rng.uniform(0.02, 0.05, n_sources)
    course = np.exp(-0.5 * ((times[None] - latency[:, None]) / width[:, None]) ** 2)   # (n_sources, n_times)
    kernel = np.ones(max(1, int(round(0.025 * sfreq))))                # ~25 ms smoothing of the noise
    parts = []
    for s in range(n_subjects):
        mixing = rng.normal(size=(n_topographies, n_sources)) / np.sqrt(n_topographies)
        pattern = topo @ mixing                                             # (n_channels, n_sources)
        signal = np.einsum("ck,nk,kt->nct", pattern, drive, course)
        noise = np.einsum("cr,nrt->nct", topo, rng.normal(size=(len(pick), n_topographies, len(times))))
        noise += rng.normal(size=noise.shape) * topo.std(1)[None, :, None]
        noise = uniform_filter1d(noise, size=len(kernel), axis=2, mode="nearest")
        noise *= np.sqrt(signal.var(axis=(0, 2)) / noise.var(axis=(0, 2)).clip(1e-40) / snr)[None, :, None]
        order = rng.permutation(len(pick))
        subject = f"sim-meg-{s + 1:02d}"
        table = pd.DataFrame({"stimulus": [f"digit-{i}" for i in pick[order]], "label": [str(v) for v in lab[order]],
                              "split": np.array(["train"] * n_train + ["test"] * n_test)[order],
                              "run": (np.arange(len(pick)) * 4 // len(pick) + 1).astype(str)})
        arr = mne.EpochsArray((signal + noise)[order], info, tmin=float(times[0]), metadata=table, verbose="error")
        parts.append(from_mne(arr, subject=subject, session="1", label=None))
    ep = concatenate(parts)
    ids = [f"digit-{i}" for i in pick]
    stimuli = pd.DataFrame({"stimulus": ids, "pixels": list(img.reshape(len(pick), -1).astype(np.float32)),
                            "height": image_size, "width": image_size,
                            "caption": [f"a handwritten {DIGIT_NAMES[v]}" for v in lab],
                            "label": [str(v) for v in lab]})
    params = {"sensors": str(sensors), "n_subjects": n_subjects, "n_train": n_train, "n_test": n_test,
              "sfreq": sfreq, "tmin": tmin, "tmax": tmax, "n_sources": n_sources, "n_topographies": n_topographies,
              "snr": snr, "image_size": image_size, "picks": picks, "seed": seed}
    provenance = [*ep.provenance, {"step": "simulate", "model": "visual sources with evoked time courses on the "
                                   "evoked responses' spatial components + correlated noise",
                                   "images": "sklearn.datasets.load_digits", "note": "SIMULATED MEG subjects, not a "
                                   "recording", **params}]
    return ep.replace(provenance=provenance, stimuli=stimuli)


def planted_subjects(n_subjects: int = 4, n_stimuli: int = 200, latent_dim: int = 8, out_dim: int = 16,
                     noise: float = 0.5, seed: int = 0) -> dict[str, Any]:
    """Subjects who see the same stimuli: ``x_s = A_s z + noise`` with random voxel counts, ``y = W z``.

    Returns a dict with ``X`` (list of (n_stimuli, n_voxels_s)), ``Y`` (n_stimuli, out_dim), ``Z`` (latents) and
    ``stimulus`` ids.
    """
    rng = np.random.default_rng(seed)
    Z = rng.normal(size=(n_stimuli, latent_dim))
    W = rng.normal(size=(latent_dim, out_dim)) / np.sqrt(latent_dim)
    Y = Z @ W
    X = []
    for _ in range(n_subjects):
        n_vox = int(rng.integers(150, 400))
        A = rng.normal(size=(latent_dim, n_vox)) / np.sqrt(latent_dim)
        X.append((Z @ A + noise * rng.normal(size=(n_stimuli, n_vox))).astype(np.float32))
    return {"X": X, "Y": Y.astype(np.float32), "Z": Z, "stimulus": np.arange(n_stimuli)}


def simulated_epochs(n_epochs: int = 40, n_channels: int = 6, n_times: int = 128, n_classes: int = 2,
                     sfreq: float = 128.0, n_subjects: int = 2, freq: float = 10.0, effect: float = 1.0,
                     ch_type: str = "eeg", seed: int = 0) -> EpochSet:
    """Labelled epochs ``(n_epochs, n_channels, n_times)`` with a planted class effect.

    Each epoch is correlated noise (a random mixing of white noise, so the channels' covariance is full rank) plus
    a ``freq`` Hz rhythm whose amplitude over the first ``n_channels // 2`` channels grows with the class index by
    ``effect`` (class 0 has none); subjects differ by a random channel gain. Channels are named ``S01`` … and
    placed on a sphere of radius 9 cm (head frame); units are volts (microvolt-scale amplitudes).

    Returns
    -------
    EpochSet with ``subject`` (``sub-01`` …), ``session``, ``run``, ``label`` (``class0`` …), ``stimulus`` and
    ``onset`` columns; its provenance says it is simulated.
    """
    if n_classes < 1 or n_subjects < 1 or n_epochs < n_classes:
        raise ValueError(f"field 'n_epochs'/'n_classes'/'n_subjects': expected n_epochs ≥ n_classes ≥ 1 and "
                         f"n_subjects ≥ 1, got {n_epochs}, {n_classes}, {n_subjects}")
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / sfreq
    labels = np.arange(n_epochs) % n_classes
    subjects = np.arange(n_epochs) * n_subjects // n_epochs
    mix = rng.normal(size=(n_channels, n_channels)) + 2 * np.eye(n_channels)
    gains = 1 + 0.3 * rng.normal(size=(n_subjects, n_channels, 1))
    X = np.einsum("ij,njt->nit", mix, rng.normal(size=(n_epochs, n_channels, n_times)))
    rhythm = np.sin(2 * np.pi * freq * t[None] + rng.uniform(0, 2 * np.pi, (n_epochs, 1)))
    X[:, : max(1, n_channels // 2)] += 3 * effect * labels[:, None, None] * rhythm[:, None, :]
    X = (X * gains[subjects]) * 1e-6
    theta, phi = rng.uniform(0.2, 1.3, n_channels), rng.uniform(0, 2 * np.pi, n_channels)
    pos = 0.09 * np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
    channels = Channels([f"S{i + 1:02d}" for i in range(n_channels)], ch_type, pos, "head")
    table = pd.DataFrame({"subject": [f"sub-{s + 1:02d}" for s in subjects], "session": "1",
                          "run": [str(1 + i % 2) for i in range(n_epochs)],
                          "label": [f"class{c}" for c in labels], "stimulus": [f"class{c}" for c in labels],
                          "onset": np.arange(n_epochs) * (n_times / sfreq + 1.0)})
    return EpochSet(X.astype(np.float32), sfreq, channels, table,
                    provenance=[{"step": "simulated_epochs", "simulated": True, "seed": seed, "freq": freq,
                                 "effect": effect}])
