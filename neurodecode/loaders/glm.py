"""Single-trial fMRI responses from BOLD runs: one response per trial ``(n_trials, n_voxels, 1)``.

* :func:`trial_responses` — a GLM per trial (least-squares-all or least-squares-separate; design matrices by
  nilearn with a chosen HRF and drift model, the ordinary least squares solved for all voxels at once), a library
  of HRFs chosen per voxel (GLMsingle's first idea, :func:`library_hrf`), fractional ridge per voxel
  (:func:`frac_ridge`, GLMsingle's third), or the fast HRF-delayed TR average.

The runs come from :func:`~neurodecode.loaders.fmri.read_run`; masks and voxel channels from
:mod:`neurodecode.loaders.fmri`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import EpochSet
from neurodecode.core.validation import fail
from neurodecode.loaders.fmri import Run, check_runs, check_stimulus_files, drop_nonfinite, make_masker, masked_data, voxel_channels

__all__ = ["frac_ridge", "library_hrf", "trial_responses"]


def _stimulus_column(events: pd.DataFrame) -> pd.Series:
    for col in ("stimulus", "stim_file", "stim_id"):
        if col in events.columns:
            return events[col]
    return events["trial_type"]


def _design(run: Run, events: pd.DataFrame, hrf_model: str, drift_model: str | None,
            high_pass: float) -> pd.DataFrame:
    from nilearn.glm.first_level import make_first_level_design_matrix

    frame_times = np.arange(run.n_volumes) * run.tr
    add = None if run.confounds is None else run.confounds
    names = None if add is None else [f"confound{i}" for i in range(add.shape[1])]
    return make_first_level_design_matrix(frame_times, events[["onset", "duration", "trial_type"]],
                                          hrf_model=hrf_model, drift_model=drift_model, high_pass=high_pass,
                                          add_regs=add, add_reg_names=names)


def _psc(Y: np.ndarray) -> np.ndarray:
    """Percent signal change per voxel (nilearn's ``signal_scaling=0``)."""
    mean = Y.mean(0)
    mean[mean == 0] = 1.0
    return 100.0 * (Y / mean - 1.0)


def _run_trials(run: Run, Y: np.ndarray, method: str, hrf_model: str, drift_model: str | None, high_pass: float,
                shift: float) -> np.ndarray:
    """Per-trial responses of one run, shape (n_trials, n_voxels)."""
    ev = run.events
    n = len(ev)
    if method == "tr_average":
        from nilearn.signal import clean

        Yc = clean(Y, detrend=True, standardize="zscore_sample", confounds=run.confounds, t_r=run.tr,
                   filter=False)
        times = np.arange(run.n_volumes) * run.tr
        out = np.empty((n, Y.shape[1]))
        for k, (onset, dur) in enumerate(zip(ev["onset"], ev["duration"])):
            sel = (times >= onset + shift) & (times < onset + max(dur, run.tr) + shift)
            if not sel.any():
                sel = np.zeros(len(times), bool)
                sel[min(int(round((onset + shift) / run.tr)), len(times) - 1)] = True
            out[k] = Yc[sel].mean(0)
        return out
    Y = _psc(Y)
    if method == "lsa":
        trials = ev.assign(trial_type=[f"trial{k:05d}" for k in range(n)])
        X = _design(run, trials, hrf_model, drift_model, high_pass)
        B = np.linalg.lstsq(X.to_numpy(), Y, rcond=None)[0]
        cols = [X.columns.get_loc(f"trial{k:05d}") for k in range(n)]
        return B[cols]
    out = np.empty((n, Y.shape[1]))
    for k in range(n):  # lss: the trial against all others, grouped by condition
        trials = ev.assign(trial_type=["other_" + str(t) for t in ev["trial_type"]])
        trials.loc[k, "trial_type"] = "target"
        X = _design(run, trials, hrf_model, drift_model, high_pass)
        B = np.linalg.lstsq(X.to_numpy(), Y, rcond=None)[0]
        out[k] = B[X.columns.get_loc("target")]
    return out


def trial_responses(runs: Sequence[Run], mask: Any = None, *, method: str = "lss", hrf_model: str = "glover",
                    drift_model: str | None = "cosine", high_pass: float = 0.01, shift: float = 4.5,
                    average_repeats: bool = False, subject: str | None = None, space: str = "scanner",
                    resample_mask: bool = False, stimuli: pd.DataFrame | None = None,
                    stim_root: str | os.PathLike | None = None, on_nonfinite: str = "raise",
                    hrf_library: Sequence[float] | None = None, fracridge: Sequence[float] | None = None) -> EpochSet:
    """Single-trial responses of BOLD runs: ``(n_trials, n_voxels, 1)``.

    Parameters
    ----------
    runs : sequence of Run
        With events (one row per trial). All runs must share the grid of the first one.
    mask : path or image, optional
        Voxels to keep (see :func:`make_masker`); default an EPI mask of the first run.
    method : {"lss", "lsa", "tr_average"}
        ``lsa``: one GLM per run with one regressor per trial; ``lss``: one GLM per trial, the trial against the
        other trials grouped by condition (Mumford et al. 2012); both on percent signal change with the drift
        model and confounds as nuisance regressors (design matrices by nilearn, OLS). ``tr_average``: per run
        detrended, confound-cleaned, z-scored signal averaged over the volumes from ``onset + shift`` to
        ``onset + duration + shift`` (at least one volume).
    hrf_model, drift_model, high_pass : as nilearn's ``make_first_level_design_matrix``.
    shift : float
        HRF delay in seconds for ``tr_average``.
    average_repeats : bool
        Average the trials of each stimulus (within the subject); the table keeps the first trial's row and
        ``n_repeats``.
    space : str
        Coordinate frame of the images (``"scanner"``, ``"mni_tal"`` for MNI-normalised data, ...).
    stimuli, stim_root : stimulus table (``stimulus`` id + e.g. ``file``) and the folder its files are relative to;
        every trial's stimulus needs a row and every file must exist.
    on_nonfinite : {"raise", "mask"}
        A NaN/Inf in a masked voxel of any run is an error naming the file, voxel and volume (``"raise"``), or
        leaves that voxel out of every run, logged and recorded in the provenance (``"mask"``). Never zero-filled.
    hrf_library : sequence of float, optional
        ``lsa`` only, GLMsingle's HRF step: peak delays (s) of a family of double-gamma HRFs (:func:`library_hrf`;
        6 is SPM's canonical one); each voxel takes the HRF whose LSA model explains most of its variance over all
        runs, and its betas are that model's. The chosen delay per voxel is in the provenance (``hrf_chosen``).

    Returns
    -------
    EpochSet
        Table: subject, session, run, stimulus (``stimulus``/``stim_file``/``trial_type`` of the events), label
        (``trial_type``), onset, duration and the other event columns.
    """
    if method not in ("lss", "lsa", "tr_average"):
        fail("method", "'lss', 'lsa' or 'tr_average'", repr(method))
    runs = list(runs)
    if not runs:
        fail("runs", "at least one Run", "none")
    for r in runs:
        if r.events is None or r.events.empty:
            raise ValueError(f"{r.name}: field 'events': expected trial events for single-trial responses, got none")
    check_runs(runs)
    masker = make_masker(mask, runs[0].img, resample_mask=resample_mask)
    channels, mask_step = voxel_channels(masker, space)
    signals = [masked_data(masker, r.img, on_nonfinite) for r in runs]
    keep = np.logical_and.reduce([finite for _, finite in signals])
    responses, extra = _responses(runs, [Y[:, keep] for Y, _ in signals], method, hrf_model, drift_model, high_pass,
                                  shift, hrf_library, fracridge)
    table = pd.concat([r.events.assign(subject=subject, session=r.session, run=r.run,
                                       stimulus=_stimulus_column(r.events), label=r.events["trial_type"])
                       for r in runs], ignore_index=True)
    data = np.concatenate(responses)[:, :, None]
    step = {"step": "trial_responses", "method": method, "hrf_model": hrf_model, "drift_model": drift_model,
            "high_pass": high_pass, "shift": shift if method == "tr_average" else None,
            "confounds": [None if r.confounds is None else int(r.confounds.shape[1]) for r in runs]}
    step.update(extra)
    channels = drop_nonfinite(channels, keep, step, runs[0].name)
    if average_repeats:
        data, table = _average_repeats(data, table)
        step["average_repeats"] = True
    if stimuli is not None:
        stimuli = check_stimulus_files(stimuli, stim_root)
    return EpochSet(data, 1.0 / runs[0].tr, channels, table, 0.0,
                    [{"step": "read_run", "file": Path(runs[0].name).name}, mask_step, step], stimuli)


def _average_repeats(data: np.ndarray, table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """The trials of each stimulus averaged; the table keeps the first trial's row and ``n_repeats``."""
    keys = table["stimulus"].astype(str).to_numpy()
    uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(first)
    sums = np.zeros((len(uniq),) + data.shape[1:])
    np.add.at(sums, inverse, data)
    counts = np.bincount(inverse)
    return (sums / counts[:, None, None])[order], table.iloc[first[order]].reset_index(drop=True).assign(
        n_repeats=counts[order])


def library_hrf(delay: float, *, ratio: float = 1 / 6) -> Any:
    """A double-gamma HRF peaking near ``delay - 1`` seconds (SPM's shape; the undershoot ``delay + 10``), as the
    callable nilearn's design matrices take (``hrf(t_r, oversampling)`` → a kernel summing to 1). ``delay=6`` is
    SPM's canonical HRF."""
    from scipy.stats import gamma

    if not 2.0 <= float(delay) <= 16.0:
        fail("hrf_library", "peak delays between 2 and 16 s", delay)

    def hrf(t_r: float, oversampling: int = 50, time_length: float = 32.0, onset: float = 0.0) -> np.ndarray:
        dt = t_r / oversampling
        t = np.linspace(0, time_length, int(np.rint(time_length / dt))) - onset
        h = gamma.pdf(t, float(delay), loc=dt) - ratio * gamma.pdf(t, float(delay) + 10.0, loc=dt)
        return h / h.sum()

    hrf.__name__ = f"hrf{float(delay):g}".replace(".", "p")
    return hrf


def _responses(runs: Sequence[Run], signals: Sequence[np.ndarray], method: str, hrf_model: str,
               drift_model: str | None, high_pass: float, shift: float, hrf_library: Sequence[float] | None,
               fracridge: Sequence[float] | None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Each run's single-trial responses (n_trials, n_voxels) by the chosen method and GLMsingle-style options, and
    what the provenance step records about those options."""
    extra: dict[str, Any] = {}
    groups: list[tuple[Any, np.ndarray]] = [(hrf_model, np.arange(signals[0].shape[1]))]
    if hrf_library is not None:
        delays = _check_library(hrf_library, method)
        responses, chosen = _library_trials(runs, signals, delays, drift_model, high_pass)
        extra.update(hrf_model="library", hrf_library=delays, hrf_chosen=chosen.tolist())
        groups = [(library_hrf(d), np.flatnonzero(chosen == d)) for d in delays if (chosen == d).any()]
    if fracridge is not None:
        fractions = _check_fractions(fracridge, method, runs)
        responses, frac = _frac_trials(runs, signals, groups, fractions, drift_model, high_pass)
        extra.update(fracridge=fractions, fraction_chosen=frac.tolist())
    elif hrf_library is None:
        responses = [_run_trials(r, Y, method, hrf_model, drift_model, high_pass, shift)
                     for r, Y in zip(runs, signals)]
    return responses, extra


def _check_library(hrf_library: Sequence[float], method: str) -> list[float]:
    if method != "lsa":
        fail("hrf_library", "method='lsa' (the HRF of each voxel is chosen on LSA fits)", f"method={method!r}")
    delays = [float(d) for d in hrf_library]
    for d in delays:
        library_hrf(d)                                      # checks the range
    if len(set(delays)) < 2:
        fail("hrf_library", "at least two distinct peak delays", delays)
    return delays


def _lsa(run: Run, Y: np.ndarray, hrf_model: Any, drift_model: str | None, high_pass: float
         ) -> tuple[np.ndarray, np.ndarray]:
    """LSA betas ``(n_trials, n_voxels)`` of percent-signal-change ``Y``, and the model's R² per voxel."""
    design, cols = _trial_design(run, hrf_model, drift_model, high_pass)
    X = design.to_numpy()
    B = np.linalg.lstsq(X, Y, rcond=None)[0]
    total = ((Y - Y.mean(0)) ** 2).sum(0)
    r2 = 1.0 - ((Y - X @ B) ** 2).sum(0) / np.where(total > 0, total, 1.0)
    return B[cols], r2


def _trial_design(run: Run, hrf_model: Any, drift_model: str | None, high_pass: float
                  ) -> tuple[pd.DataFrame, list[int]]:
    """An LSA design (one regressor per trial, then drifts and confounds) and each trial's column."""
    n = len(run.events)
    trials = run.events.assign(trial_type=[f"trial{k:05d}" for k in range(n)])
    design = _design(run, trials, hrf_model, drift_model, high_pass)
    names = list(design.columns)
    cols = [next(i for i, c in enumerate(names) if c == f"trial{k:05d}" or c.startswith(f"trial{k:05d}_"))
            for k in range(n)]
    return design, cols


def _library_trials(runs: Sequence[Run], signals: Sequence[np.ndarray], delays: Sequence[float],
                    drift_model: str | None, high_pass: float) -> tuple[list[np.ndarray], np.ndarray]:
    """GLMsingle's HRF step: each voxel takes the library HRF whose LSA model explains most of its variance over
    all runs; returns each run's betas under the chosen HRFs and the chosen delay per voxel."""
    fits = [[_lsa(r, _psc(Y), library_hrf(d), drift_model, high_pass) for d in delays] for r, Y in zip(runs, signals)]
    r2 = np.sum([[f[1] for f in run_fits] for run_fits in fits], axis=0)      # (n_delays, n_voxels)
    best = r2.argmax(0)
    voxels = np.arange(len(best))
    betas = [np.stack([f[0] for f in run_fits])[best, :, voxels].T for run_fits in fits]
    return betas, np.asarray(delays, dtype=float)[best]


#: fracridge's grid of candidate penalties: from 1e-2·s_min² to 1e4·s_max² in steps of 10^0.2 (Rokem & Kay 2020)
_FRAC_GRID = (1e-2, 1e4, 0.2)


def frac_ridge(X: np.ndarray, Y: np.ndarray, fractions: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fractional ridge regression (Rokem & Kay 2020): for each target column, the ridge solutions whose length is
    each given fraction of the ordinary-least-squares solution's.

    The same grid and interpolation as the ``fracridge`` package (penalties interpolated in log(1 + α) on a grid
    from 1e-2·s_min² to 1e4·s_max²), vectorised over targets (thousands of voxels in one pass, no loop per voxel).

    Parameters
    ----------
    X : ndarray (n_samples, n_features)
    Y : ndarray (n_samples, n_targets)
    fractions : increasing values in (0, 1]; 1 is the OLS solution.

    Returns
    -------
    coef : ndarray (n_fractions, n_features, n_targets)
    alphas : ndarray (n_fractions, n_targets)
    """
    f = np.asarray(fractions, dtype=np.float64)
    if f.ndim != 1 or len(f) == 0 or (np.diff(f) <= 0).any() or f[0] <= 0 or f[-1] > 1:
        fail("fracridge", "increasing fractions in (0, 1]", list(np.atleast_1d(fractions)))
    X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
    U, s, Vt = np.linalg.svd(X, full_matrices=False)
    good = s > 1e-10
    ols = np.zeros((len(s), Y.shape[1]))
    ols[good] = (U[:, good].T @ Y) / s[good, None]                        # OLS coefficients, rotated
    small, big, step = _FRAC_GRID
    sv = s[good]
    grid = np.r_[0.0, 10.0 ** np.arange(np.floor(np.log10(small * sv[-1] ** 2)), np.ceil(np.log10(big * sv[0] ** 2)),
                                       step)]
    shrink = np.zeros((len(grid), len(s)))
    shrink[:, good] = sv ** 2 / (sv ** 2 + grid[:, None])
    length = np.sqrt(shrink ** 2 @ ols ** 2)                              # (n_grid, n_targets), decreasing
    ratio = length / np.where(length[0] > 0, length[0], 1.0)
    log_grid = np.log1p(grid)
    alphas = np.empty((len(f), Y.shape[1]))
    for i, frac in enumerate(f):                                           # interpolate each target's crossing
        k = np.clip((ratio >= frac).sum(0), 1, len(grid) - 1)
        r0, r1 = ratio[k - 1, np.arange(Y.shape[1])], ratio[k, np.arange(Y.shape[1])]
        w = np.where(r0 > r1, (r0 - frac) / np.where(r0 > r1, r0 - r1, 1.0), 0.0).clip(0, 1)
        alphas[i] = np.expm1(log_grid[k - 1] + w * (log_grid[k] - log_grid[k - 1]))
    alphas[:, length[0] == 0] = 0.0
    coef = np.empty((len(f), X.shape[1], Y.shape[1]))
    for i in range(len(f)):
        scale = np.zeros((len(s), Y.shape[1]))
        scale[good] = sv[:, None] ** 2 / (sv[:, None] ** 2 + alphas[i][None, :])
        coef[i] = Vt.T @ (scale * ols)
    return coef, alphas


def _check_fractions(fractions: Sequence[float], method: str, runs: Sequence[Run]) -> list[float]:
    if method != "lsa":
        fail("fracridge", "method='lsa' (the shrinkage of single-trial LSA betas)", f"method={method!r}")
    f = sorted({float(x) for x in fractions} | {1.0})
    if f[0] <= 0 or f[-1] > 1:
        fail("fracridge", "fractions in (0, 1]", list(fractions))
    if len(runs) < 2:
        fail("fracridge", "at least 2 runs (the fraction of each voxel is chosen by leave-one-run-out)", len(runs))
    return f


def _partial_out(design: pd.DataFrame, trial_cols: list[int], Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Trial regressors and data with the nuisance regressors (drifts, constant, confounds) projected out, so that
    only the trial betas are shrunk (Frisch–Waugh–Lovell: at fraction 1 the betas are the LSA ones)."""
    X = design.to_numpy()
    nuisance = np.delete(X, trial_cols, axis=1)
    Q = np.linalg.qr(nuisance)[0] if nuisance.shape[1] else np.zeros((len(X), 0))
    Xt = X[:, trial_cols]
    return Xt - Q @ (Q.T @ Xt), Y - Q @ (Q.T @ Y)


def _frac_run(run: Run, Y: np.ndarray, hrf: Any, fractions: Sequence[float], drift_model: str | None,
              high_pass: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One run's single-trial betas at every fraction (n_fractions, n_trials, n_voxels) and its projected trial
    regressors and data (for the cross-validation)."""
    design, cols = _trial_design(run, hrf, drift_model, high_pass)
    Xt, Yp = _partial_out(design, cols, _psc(Y))
    return frac_ridge(Xt, Yp, fractions)[0], Xt, Yp


def _held_out_r2(fits: Sequence[tuple], stimuli: Sequence[np.ndarray], h: int) -> np.ndarray:
    """R² (n_fractions, n_voxels) of run ``h``'s data predicted from the other runs' condition-mean betas."""
    coef_h, Xt, Yp = fits[h]
    train_stim = np.concatenate([stimuli[r] for r in range(len(fits)) if r != h])
    train_beta = np.concatenate([fits[r][0] for r in range(len(fits)) if r != h], axis=1)   # (F, n_train, V)
    rep = np.isin(stimuli[h], train_stim)
    if not rep.any():
        return np.zeros((len(coef_h), Yp.shape[1]))
    if (~rep).any():        # trials of stimuli not seen elsewhere are fitted out, not predicted
        Xo = Xt[:, ~rep]
        P = Xo @ np.linalg.pinv(Xo)
        Xr, Yr = Xt[:, rep] - P @ Xt[:, rep], Yp - P @ Yp
    else:
        Xr, Yr = Xt, Yp
    ids, where = np.unique(train_stim, return_inverse=True)
    means = np.stack([train_beta[:, where == i].mean(1) for i in range(len(ids))])        # (n_stimuli, F, V)
    pick = np.searchsorted(ids, stimuli[h][rep])
    total = (Yr ** 2).sum(0)
    return np.stack([1 - ((Yr - Xr @ means[pick, i]) ** 2).sum(0) / np.where(total > 0, total, 1.0)
                     for i in range(len(coef_h))])


def _frac_trials(runs: Sequence[Run], signals: Sequence[np.ndarray], hrf_groups: Sequence[tuple[Any, np.ndarray]],
                 fractions: Sequence[float], drift_model: str | None, high_pass: float
                 ) -> tuple[list[np.ndarray], np.ndarray]:
    """GLMsingle's shrinkage step: LSA betas by fractional ridge, each voxel's fraction chosen by leave-one-run-out
    prediction of the held-out run from the other runs' condition-mean betas, then each voxel's betas rescaled
    linearly onto its unregularised ones (GLMsingle's post-hoc scaling). ``hrf_groups``: (HRF, voxel indices)."""
    n_vox = signals[0].shape[1]
    betas = [np.empty((len(r.events), n_vox)) for r in runs]
    chosen = np.ones(n_vox)
    stimuli = [np.asarray(_stimulus_column(r.events)).astype(str) for r in runs]
    repeated = {s for k, a in enumerate(stimuli) for s in a if any(s in b for j, b in enumerate(stimuli) if j != k)}
    if not repeated:
        fail("fracridge", "stimuli repeated across runs (the fraction of each voxel is chosen by predicting a "
             "held-out run from the other runs' betas of the same stimuli)", "no stimulus in two runs",
             runs[0].name)
    for hrf, vox in hrf_groups:
        fits = [_frac_run(r, Y[:, vox], hrf, fractions, drift_model, high_pass) for r, Y in zip(runs, signals)]
        score = np.sum([_held_out_r2(fits, stimuli, h) for h in range(len(runs))], axis=0)      # (F, n)
        best = len(fractions) - 1 - score[::-1].argmax(0)          # ties: the larger fraction (less shrinkage)
        chosen[vox] = np.asarray(fractions)[best]
        shrunk = np.concatenate([f[0][best, :, np.arange(len(vox))].T for f in fits])          # (n_trials, n)
        ols = np.concatenate([f[0][-1] for f in fits])
        sc = shrunk - shrunk.mean(0)
        gain = (sc * (ols - ols.mean(0))).sum(0) / np.where((sc ** 2).sum(0) > 0, (sc ** 2).sum(0), 1.0)
        rescaled = ols.mean(0) + gain * sc
        starts = np.cumsum([0] + [len(r.events) for r in runs])
        for k in range(len(runs)):
            betas[k][:, vox] = rescaled[starts[k]:starts[k + 1]]
    return betas, chosen
