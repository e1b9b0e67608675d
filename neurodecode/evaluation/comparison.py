"""A pipeline beside its plain baseline on the same trials: per-trial scores, paired differences, a verdict.

Every deep result in neurodecode is reported next to the plain reference for its task, fitted on the same split
(ridge onto the same target space for alignment, tangent space + logistic regression for classification). The
comparison is **paired** — the same held-out trials scored by both — so its uncertainty is that of the per-trial
differences:

* :func:`trial_scores` — one row per trial: two-way identification and top-1 among the trials (the tie rule of
  :mod:`neurodecode.evaluation.retrieval`), and PixCorr of the linear reconstruction in image spaces;
* :func:`paired_difference` — mean difference, a percentile-bootstrap confidence interval over trials and a
  two-sided sign-flip permutation p-value (seeded);
* :func:`compare_scores` — one row per metric (value, baseline, difference, CI, p) and :func:`verdict`, the
  one-line warning when the configured pipeline does not beat its baseline.

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurodecode.core.validation import fail
from neurodecode.evaluation.retrieval import check_pair, compare, normalize_rows, topk_hits

__all__ = ["COLUMNS", "compare_scores", "format_comparison", "mean_interval", "paired_difference", "trial_scores", "verdict"]

#: the columns of a comparison table
COLUMNS = ["kind", "metric", "pipeline", "value", "baseline_name", "baseline", "difference", "ci_low", "ci_high",
           "p_value", "n_items"]


def trial_scores(pred: Any, true: Any, *, metric: str = "cosine", images: tuple[Any, Any] | None = None
                 ) -> pd.DataFrame:
    """Per-trial identification scores of predicted latents against their targets.

    Parameters
    ----------
    pred, true : array (n_trials, embed_dim)
        Predicted and true latents, in the same order.
    metric : "cosine" or "pearson"
    images : (predicted, true) images (n_trials, H, W[, C]), optional
        Adds each trial's PixCorr.

    Returns
    -------
    DataFrame (n_trials rows)
        ``two_way`` (the fraction of the other trials whose target the prediction matches less than its own; ties
        ½) and ``top1`` (a hit when the own target is the most similar among the trials' targets; ties shared),
        plus ``pixcorr`` with ``images``. Their means are the held-out scores of
        :func:`~neurodecode.evaluation.retrieval.two_way_identification` and top-1 retrieval among all trials.
    """
    p, t = check_pair(pred, true)
    n = p.shape[0]
    if n < 2:
        fail("pred", "at least 2 trials to compare predictions among", n)
    S = normalize_rows(p, metric) @ normalize_rows(t, metric).T
    ahead, tied = compare(S, S.diagonal()[:, None], torch.eye(n, dtype=torch.bool))
    two_way = ((n - 1) - ahead.double() - 0.5 * tied.double()) / (n - 1)
    out = pd.DataFrame({"two_way": two_way.numpy(), "top1": topk_hits(ahead.numpy(), tied.numpy(), 1)})
    if images is not None:
        a, b = check_pair(*images)
        out["pixcorr"] = (normalize_rows(a, "pearson") * normalize_rows(b, "pearson")).sum(1).numpy()
    return out


def mean_interval(values: Any, *, confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0
                  ) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of per-item scores (n_items,)."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2 or not np.isfinite(v).all():
        fail("values", "at least 2 finite per-item scores (n_items,)", v.shape)
    means = v[np.random.default_rng(seed).integers(0, len(v), size=(n_resamples, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(lo), float(hi)


def paired_difference(a: Any, b: Any, *, confidence: float = 0.95, n_resamples: int = 2000,
                      n_permutations: int = 10000, seed: int = 0) -> dict[str, float]:
    """Mean of ``a - b`` over paired items with a bootstrap interval and a sign-flip permutation p-value.

    Parameters
    ----------
    a, b : array (n_items,)
        The same items scored by two pipelines.
    confidence : the interval's coverage (percentile bootstrap over items, ``n_resamples`` draws).
    n_permutations : random sign flips of the differences (two-sided test of a zero mean difference); the
        p-value is ``(1 + #{|flipped mean| ≥ |observed|}) / (1 + n_permutations)``, so never 0.
    seed : seeds both.

    Returns
    -------
    dict with ``value`` (mean of a), ``baseline`` (mean of b), ``difference``, ``ci_low``, ``ci_high``,
    ``p_value``, ``n_items``.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        fail("a", f"one score per item, as 'b' {b.shape}", a.shape)
    if len(a) < 2 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        fail("a", "at least 2 finite paired scores", f"{len(a)} items")
    if not 0 < confidence < 1:
        fail("confidence", "a value in (0, 1)", confidence)
    d = a - b
    lo, hi = mean_interval(d, confidence=confidence, n_resamples=n_resamples, seed=seed)
    rng = np.random.default_rng(seed + 1)
    observed = abs(d.mean())
    flips = rng.choice([-1.0, 1.0], size=(n_permutations, len(d))) @ d / len(d)
    # a flipped mean within rounding of the observed one counts as "as extreme" (all-zero differences: p = 1)
    extreme = int(np.sum(np.abs(flips) >= observed - 1e-12 * max(1.0, np.abs(d).max())))
    return {"value": float(a.mean()), "baseline": float(b.mean()), "difference": float(d.mean()),
            "ci_low": float(lo), "ci_high": float(hi), "p_value": (1 + extreme) / (1 + n_permutations),
            "n_items": int(len(d))}


def compare_scores(scores: pd.DataFrame, baseline: pd.DataFrame, *, names: tuple[str, str] = ("pipeline",
                                                                                              "baseline"),
                   kinds: Mapping[str, str] | None = None, seed: int = 0, **options: Any) -> pd.DataFrame:
    """One row per shared metric of two per-trial score tables (the same trials in the same order).

    ``kinds`` maps a metric to its kind (default: ``"retrieval"``, ``pixcorr`` → ``"images"``); ``options`` go to
    :func:`paired_difference`. Columns: :data:`COLUMNS`.
    """
    if len(scores) != len(baseline):
        fail("baseline", f"the same trials as the pipeline's scores ({len(scores)})", f"{len(baseline)} rows")
    kinds = {"pixcorr": "images", "ssim": "images", **(kinds or {})}
    rows = []
    for metric in [c for c in scores.columns if c in baseline.columns]:
        res = paired_difference(scores[metric], baseline[metric], seed=seed, **options)
        rows.append({"kind": kinds.get(metric, "retrieval"), "metric": metric, "pipeline": names[0],
                     "baseline_name": names[1], **res})
    return pd.DataFrame(rows, columns=COLUMNS)


def verdict(table: pd.DataFrame, metric: str = "two_way") -> tuple[bool, str]:
    """Whether the pipeline beats its baseline on ``metric`` (a positive difference whose interval excludes 0),
    and a one-line summary of that row (a warning when it does not)."""
    rows = table[table["metric"] == metric]
    if rows.empty:
        fail("metric", f"one of the compared metrics {table['metric'].tolist()}", metric)
    r = rows.iloc[0]
    beats = bool(r["difference"] > 0 and r["ci_low"] > 0)
    line = (f"{r['pipeline']} {metric} {r['value']:.3f} vs {r['baseline_name']} {r['baseline']:.3f}: difference "
            f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}], p = {r['p_value']:.3g} "
            f"(n = {int(r['n_items'])})")
    if not beats:
        line = f"the configured pipeline does not beat its plain baseline: {line}"
    return beats, line


def format_comparison(table: pd.DataFrame) -> Sequence[str]:
    """One line per compared metric."""
    return [f"{r.metric:<9} {r.pipeline} {r.value:.3f} | {r.baseline_name} {r.baseline:.3f} | "
            f"Δ {r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] p={r.p_value:.3g}"
            for r in table.itertuples()]
