"""Pure scoring of decoded latents — retrieval, identification and paired comparisons — on the ground floor, as
scikit-learn keeps ``metrics`` a leaf: the aligners' selection (``aligner=auto``), decoding's gallery retrieval and
the evaluation harness all score with these functions, and they import nothing above ``neurodecode.core``.

Retrieval and identification, as MindEye and MindBridge report them:

* :func:`two_way_identification`: for each prediction, the fraction of the other items whose target it matches
  less than its own (Pearson correlation by default); chance 0.5.
* :func:`retrieval_accuracy`: top-k retrieval among random candidate pools (MindEye: 300 candidates, 30 repeats),
  in both directions (prediction → target, "image retrieval"; target → prediction, "brain retrieval"), with seeded
  pools so every run scores the same candidates.
* :func:`gallery_rank` / :func:`gallery_topk`: rank of the true item in a user's large gallery / the k nearest,
  computed in blocks (memory linear in the gallery size, never a full query × gallery matrix).

A pipeline beside its plain baseline on the same trials (every deep result in neurodecode is reported next to the
plain reference for its task, fitted on the same split); the comparison is **paired**, so its uncertainty is that
of the per-trial differences:

* :func:`trial_scores` — one row per trial: two-way identification and top-1 among the trials, and PixCorr of the
  linear reconstruction in image spaces;
* :func:`paired_difference` — mean difference, a percentile-bootstrap confidence interval over trials and a
  two-sided sign-flip permutation p-value (seeded); :func:`mean_interval` — a mean and its bootstrap interval;
* :func:`compare_scores` — one row per metric (value, baseline, difference, CI, p) and :func:`verdict`, the
  one-line warning when the configured pipeline does not beat its baseline.

**Ties** (one rule for every metric here and in :func:`~neurodecode.evaluation.metrics.n_way_top1`): a candidate
whose similarity is within :data:`TIE_TOLERANCE` × the scores' scale of the true item's counts half — the expected
result of breaking the tie at random. So two exact copies of one item score the same on every machine, whatever
the last rounding bit says. Similarities here are cosines or correlations (scale 1), so the tolerance is absolute.
With ``ahead`` candidates clearly more similar and ``tied`` within the tolerance, a top-k hit counts
``clip((k - ahead) / (tied + 1), 0, 1)`` (top-1 with one tie: ½), a two-way comparison ½, and the rank is
``ahead + tied / 2``.

Image, caption and 3D metrics and the harness that combines them all are in :mod:`neurodecode.evaluation.metrics`.
Imports nothing from neurodecode outside ``neurodecode.core``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurodecode.core.validation import fail

__all__ = ["COLUMNS", "TIE_TOLERANCE", "as_matrix", "check_pair", "compare", "compare_scores", "format_comparison",
           "gallery_rank", "gallery_topk", "mean_interval", "normalize_rows", "paired_difference",
           "erp_correlations", "retrieval_accuracy", "similarity", "topk_hits", "trial_scores",
           "two_way_identification", "verdict"]



#: similarities closer than this (times the scores' scale, 1 for cosines and correlations) are a tie: far above
#: float64 rounding of a normalised dot product (~1e-15 · sqrt(dim)), far below any real difference in similarity
TIE_TOLERANCE = 1e-9


def as_matrix(a: Any, name: str) -> torch.Tensor:
    """``a`` as a float64 tensor (n_items, n_features) (trailing axes flattened), finite, or a ValueError."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    a = a.reshape(a.shape[0], -1) if a.ndim > 2 else a
    if a.ndim != 2:
        raise ValueError(f"field '{name}': expected an array (n_items, n_features), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"field '{name}': expected finite values, got NaN or Inf")
    return torch.as_tensor(a)


def normalize_rows(a: torch.Tensor, metric: str) -> torch.Tensor:
    """Rows centred (``"pearson"``) and scaled to unit norm, so that row products are correlations / cosines."""
    if metric == "pearson":
        a = a - a.mean(1, keepdim=True)
    elif metric != "cosine":
        raise ValueError(f"field 'metric': expected 'pearson' or 'cosine', got {metric!r}")
    norm = a.norm(dim=1, keepdim=True)
    return a / torch.where(norm == 0, torch.ones_like(norm), norm)


def check_pair(pred: Any, true: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions and targets as matrices of one shape (one prediction per item), or a ValueError."""
    p, t = as_matrix(pred, "pred"), as_matrix(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"field 'pred': expected the shape of 'true' {tuple(t.shape)} (one prediction per item, "
                         f"same dimension), got {tuple(p.shape)}")
    return p, t


def similarity(a: Any, b: Any, metric: str = "pearson") -> np.ndarray:
    """Similarity matrix (n_a, n_b) between rows of ``a`` and ``b`` (Pearson correlation or cosine)."""
    return (normalize_rows(as_matrix(a, "a"), metric) @ normalize_rows(as_matrix(b, "b"), metric).T).numpy()


def compare(sims: torch.Tensor, own: torch.Tensor, exclude: torch.Tensor | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """How many candidates are clearly more similar than the true item, and how many tie with it.

    Parameters
    ----------
    sims : tensor (n_queries, n_candidates)
    own : tensor (n_queries, 1)
        Each query's similarity to its true item.
    exclude : bool tensor (n_queries, n_candidates), optional
        Candidates not compared (the true item itself).

    Returns
    -------
    ahead, tied : int64 tensors (n_queries,)
    """
    scale = torch.maximum(own.abs(), sims.abs().amax(1, keepdim=True)).clamp(min=1.0)
    diff = sims - own
    ahead, tied = diff > TIE_TOLERANCE * scale, diff.abs() <= TIE_TOLERANCE * scale
    if exclude is not None:
        ahead, tied = ahead & ~exclude, tied & ~exclude
    return ahead.sum(1), tied.sum(1)


def topk_hits(ahead: Any, tied: Any, k: int) -> np.ndarray:
    """Each query's top-``k`` hit under random tie-breaking: ``clip((k - ahead) / (tied + 1), 0, 1)``."""
    ahead, tied = np.asarray(ahead, dtype=np.float64), np.asarray(tied, dtype=np.float64)
    return np.clip((k - ahead) / (tied + 1), 0.0, 1.0)


def two_way_identification(pred: Any, true: Any, metric: str = "pearson") -> float:
    """Mean over items i of the fraction of j ≠ i with ``sim(pred_i, true_i) > sim(pred_i, true_j)``; a tie
    (within :data:`TIE_TOLERANCE`) counts half.

    Parameters
    ----------
    pred, true : array (n_items, ...)
        Predictions and their targets, in the same order (pixels, embeddings, network features).
    """
    p, t = check_pair(pred, true)
    n = p.shape[0]
    if n < 2:
        raise ValueError(f"field 'pred': expected at least 2 items for two-way identification, got {n}")
    S = normalize_rows(p, metric) @ normalize_rows(t, metric).T
    ahead, tied = compare(S, S.diagonal()[:, None], torch.eye(n, dtype=torch.bool))
    wins = (n - 1) - ahead.to(torch.float64) - 0.5 * tied.to(torch.float64)
    return float((wins / (n - 1)).mean())


def retrieval_accuracy(pred: Any, true: Any, *, k: int = 1, pool_size: int | None = 300, n_repeats: int = 30,
                       seed: int = 0, metric: str = "cosine") -> dict[str, float]:
    """Top-k retrieval among random candidate pools, in both directions.

    For each repeat a pool of ``pool_size`` items is drawn (seeded); within it, each prediction ranks the pool's
    targets ("image retrieval", pred → true) and each target ranks the pool's predictions ("brain retrieval"). A
    hit is the true partner among the ``k`` most similar. With ``pool_size=None`` (or ≥ n_items) the whole set is
    one pool and ``n_repeats`` is 1. Ties count by the module's rule (top-1 with one tie: ½).

    Returns
    -------
    dict
        ``{"image_topk": ..., "brain_topk": ..., "pool_size": ..., "n_repeats": ...}``
    """
    p, t = check_pair(pred, true)
    n = p.shape[0]
    pool = n if pool_size is None or pool_size >= n else int(pool_size)
    if not 1 <= k <= pool:
        raise ValueError(f"field 'k': expected 1 <= k <= the candidate pool ({pool} items), got {k}")
    repeats = 1 if pool == n else int(n_repeats)
    rng = np.random.default_rng(seed)
    pn, tn = normalize_rows(p, metric), normalize_rows(t, metric)
    hits_img, hits_brain = [], []
    for _ in range(repeats):
        idx = torch.as_tensor(rng.choice(n, size=pool, replace=False) if pool < n else np.arange(n))
        S = pn[idx] @ tn[idx].T
        own, eye = S.diagonal()[:, None], torch.eye(pool, dtype=torch.bool)
        hits_img.append(topk_hits(*compare(S, own, eye), k).mean())
        hits_brain.append(topk_hits(*compare(S.T, own, eye), k).mean())
    return {f"image_top{k}": float(np.mean(hits_img)), f"brain_top{k}": float(np.mean(hits_brain)),
            "pool_size": pool, "n_repeats": repeats}


def gallery_rank(query: Any, gallery: Any, true_index: Any, *, metric: str = "cosine", block: int = 65536,
                 return_ties: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """0-based rank of each query's true item in a (large) gallery, computed block by block; a tie counts half.

    Parameters
    ----------
    query : array (n_queries, dim)
    gallery : array (n_gallery, dim)
    true_index : array of int (n_queries,)
        Row of ``gallery`` that each query should retrieve.
    block : int
        Gallery rows compared at once (memory ∝ n_queries × block).
    return_ties : bool
        Return ``(ahead, tied)`` (int arrays) instead of the rank.

    Returns
    -------
    ndarray of float (n_queries,)
        ``ahead + tied / 2``: the expected rank when ties are broken at random (an integer without ties). Top-k
        accuracy under the same rule is ``topk_hits(*gallery_rank(..., return_ties=True), k).mean()``.
    """
    q, g = normalize_rows(as_matrix(query, "query"), metric), normalize_rows(as_matrix(gallery, "gallery"), metric)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"field 'gallery': expected embeddings of the queries' dimension {q.shape[1]}, got "
                         f"{g.shape[1]}")
    idx = np.asarray(true_index, dtype=np.int64)
    if idx.shape != (q.shape[0],) or idx.min() < 0 or idx.max() >= g.shape[0]:
        raise ValueError(f"field 'true_index': expected one gallery row in [0, {g.shape[0]}) per query, got shape "
                         f"{idx.shape}")
    true = torch.as_tensor(idx)
    own = (q * g[true]).sum(1, keepdim=True)
    ahead = torch.zeros(q.shape[0], dtype=torch.int64)
    tied = torch.zeros(q.shape[0], dtype=torch.int64)
    for start in range(0, g.shape[0], block):
        sims = q @ g[start:start + block].T
        cols = torch.arange(start, start + sims.shape[1])
        a, t = compare(sims, own, cols[None, :] == true[:, None])   # the true item is never its own rival
        ahead += a
        tied += t
    if return_ties:
        return ahead.numpy(), tied.numpy()
    return ahead.numpy() + 0.5 * tied.numpy()


def gallery_topk(query: Any, gallery: Any, k: int, *, metric: str = "cosine", block: int = 65536) -> np.ndarray:
    """Indices (n_queries, k) of each query's ``k`` most similar gallery rows, most similar first, computed block by
    block (memory ∝ n_queries × (block + k)); ties keep the lower gallery index first."""
    q, g = normalize_rows(as_matrix(query, "query"), metric), normalize_rows(as_matrix(gallery, "gallery"), metric)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"field 'gallery': expected embeddings of the queries' dimension {q.shape[1]}, got "
                         f"{g.shape[1]}")
    if not 1 <= k <= g.shape[0]:
        raise ValueError(f"field 'k': expected 1 <= k <= the gallery size {g.shape[0]}, got {k}")
    best_s = torch.full((q.shape[0], 0), -torch.inf, dtype=q.dtype)
    best_i = torch.zeros((q.shape[0], 0), dtype=torch.int64)
    for start in range(0, g.shape[0], block):
        sims = q @ g[start:start + block].T
        cand_s = torch.cat([best_s, sims], 1)
        cand_i = torch.cat([best_i, torch.arange(start, start + sims.shape[1]).expand(q.shape[0], -1)], 1)
        order = torch.argsort(-cand_s, dim=1, stable=True)[:, :k]
        best_s, best_i = cand_s.gather(1, order), cand_i.gather(1, order)
    return best_i.numpy()


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
        :func:`~neurodecode.core.scores.two_way_identification` and top-1 retrieval among all trials.
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
    kinds = {"pixcorr": "images", "ssim": "images", "accuracy": "classification", **(kinds or {})}
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
    """One line per compared metric (with what it was paired over, when the table says: ``unit``)."""
    return [f"{r.metric:<9} {r.pipeline} {r.value:.3f} | {r.baseline_name} {r.baseline:.3f} | "
            f"Δ {r.difference:+.3f} [{r.ci_low:+.3f}, {r.ci_high:+.3f}] p={r.p_value:.3g}"
            + (f" (paired over {int(r.n_items)} {r.unit})" if isinstance(getattr(r, "unit", None), str) else "")
            for r in table.itertuples()]


def erp_correlations(trials: Any, labels: Any, reference: Any, reference_labels: Any) -> np.ndarray:
    """Pearson r of each trial ``(n, n_channels, n_times)`` with the average of the ``reference`` trials of its
    class (the class ERP, e.g. of the training trials) — how much single trials (raw, or a model's reconstructions)
    look like the evoked response. Shape (n,); a class without reference trials is an error naming it."""
    T, R = np.asarray(trials, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    y, yr = np.asarray(labels), np.asarray(reference_labels)
    if T.ndim != 3 or R.ndim != 3 or T.shape[1:] != R.shape[1:] or len(y) != len(T) or len(yr) != len(R):
        fail("trials", "trials (n, n_channels, n_times) and reference trials of the same shape, one label each",
             f"{T.shape} / {R.shape} with {len(y)} / {len(yr)} labels")
    out = np.empty(len(T))
    for c in np.unique(y):
        if not (yr == c).any():
            fail("reference_labels", f"reference trials of class {c!r}", "none")
        erp = R[yr == c].mean(0).ravel()
        erp = (erp - erp.mean()) / (erp.std() or 1.0)
        rows = T[y == c].reshape(int((y == c).sum()), -1)
        rows = (rows - rows.mean(1, keepdims=True)) / np.where(rows.std(1, keepdims=True) > 0,
                                                              rows.std(1, keepdims=True), 1.0)
        out[y == c] = rows @ erp / erp.size
    return out
