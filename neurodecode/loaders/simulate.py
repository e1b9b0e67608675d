"""A simulated fMRI subject for the built-in demo: real images through a known encoding model plus realistic noise.

The images are scikit-learn's handwritten digits (1,797 real 8 × 8 scans, shipped with scikit-learn, so nothing is
downloaded), upsampled to ``image_size`` pixels. Each voxel has a population receptive field (pRF) — a 2D Gaussian
whose size grows with eccentricity, as in early visual cortex — and responds with compressive spatial summation
(Kay et al. 2013: ``gain · (Σ image · pRF)^exponent``). The noise is Gaussian, spatially correlated between voxels
that sit close on the simulated cortical sheet, and scaled per voxel to a chosen signal-to-noise ratio. The subject
is **simulated**: the epochs' provenance says so, and so does every report made from them.

:func:`planted_subjects` is the synthetic check of cross-subject models: subjects that see the same stimuli through
different random voxel mixings of one planted latent.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import Channels, EpochSet

__all__ = ["DIGIT_NAMES", "digit_images", "planted_subjects", "simulated_subject"]

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
