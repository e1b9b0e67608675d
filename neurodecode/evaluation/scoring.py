"""Scoring a decoded set of trials: latents, reconstructed images, captions and gallery retrieval against the truth.

The building blocks of ``neurodecode reconstruct``'s and ``neurodecode train``'s scores, on plain arrays and head
outputs (so that they are usable on any decoded results): :func:`latent_scores` (retrieval among the trials and the
linear image reconstruction of an image-space latent), :func:`image_scores`, :func:`caption_scores_exact`
(BLEU-4, ROUGE-L and exact match against the commonest caption as chance), :func:`gallery_retrieval` (top-k and the
true stimulus's rank in a large gallery, block by block) and :func:`format_scores` (one line per score).

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.stimuli import resize_images
from neurodecode.evaluation.metrics import Scores, score_outputs
from neurodecode.core.scores import gallery_rank, mean_interval, topk_hits, trial_scores

__all__ = ["caption_scores_exact", "class_scores", "confusion", "format_scores", "gallery_retrieval", "image_scores",
           "latent_scores", "latent_trial_scores", "predicted_classes", "with_intervals"]


def latent_scores(target: Any, latents: np.ndarray, stimuli: pd.DataFrame, ids: Sequence[str], *, seed: int = 0,
                  names: tuple[str, str] = ("latents", "linear"), per_trial: pd.DataFrame | None = None) -> Scores:
    """Scores of predicted latents against the stimuli ``ids``: retrieval among the trials, and the linear image
    reconstruction (PixCorr, SSIM) when the latent space is an image space.

    ``target`` is the :class:`~neurodecode.alignment.targets.TargetSpace` the latents live in; ``names`` the two
    pipeline labels of the rows; ``per_trial`` the latents' :func:`latent_trial_scores` when already computed (their
    bootstrap intervals go on the rows).
    """
    if target.kind == "labels":
        scores = class_scores(target, latents, ids, pipeline=names[0])
        if per_trial is None:
            per_trial = latent_trial_scores(target, latents, stimuli, ids)
        return with_intervals(scores, per_trial, seed=seed)
    true = target.transform(stimuli, ids)
    scores = score_outputs("retrieval", latents, true, k=[1, 5] if len(ids) > 5 else [1], pool_size=None,
                           n_repeats=1, seed=seed, pipeline=names[0])
    linear = target.decode(latents)
    truth_images = None if linear is None else target.images(stimuli, ids)
    if linear is not None:
        scores = scores + score_outputs("images", linear, truth_images, pipeline=names[1])
    if per_trial is None:
        per_trial = trial_scores(latents, true, images=None if linear is None else (linear, truth_images))
    return with_intervals(scores, per_trial, seed=seed)


def latent_trial_scores(target: Any, latents: np.ndarray, stimuli: pd.DataFrame, ids: Sequence[str]
                        ) -> pd.DataFrame:
    """Per-trial scores of predicted latents against the stimuli ``ids``
    (:func:`~neurodecode.core.scores.trial_scores`: two-way, top-1 among the trials, and the linear
    reconstruction's PixCorr in image spaces; a labels space: ``accuracy``, 1 where the predicted class is the
    trial's)."""
    if target.kind == "labels":
        return pd.DataFrame({"accuracy": (predicted_classes(target, latents) == np.asarray(ids, dtype=str))
                             .astype(np.float64)})
    true = target.transform(stimuli, ids)
    linear = target.decode(latents)
    return trial_scores(latents, true, images=None if linear is None else (linear, target.images(stimuli, ids)))


#: per-trial score column → the metric row it is the mean of
TRIAL_METRICS = {"two_way": "two_way", "top1": "image_top1", "pixcorr": "pixcorr", "accuracy": "accuracy"}


def predicted_classes(target: Any, latents: np.ndarray) -> np.ndarray:
    """The class of each latent in a labels target space: the largest of its one-hot coordinates (the nearest
    class by cosine, as retrieval ranks them). Shape (n,)."""
    z = np.asarray(latents, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] != len(target.classes_):
        raise ValueError(f"field 'latents': expected (n, {len(target.classes_)}) class scores, got {z.shape}")
    return np.asarray(target.classes_, dtype=str)[z.argmax(1)]


def class_scores(target: Any, latents: np.ndarray, labels: Sequence[str], pipeline: str | None = None) -> Scores:
    """Accuracy, balanced accuracy and ROC-AUC (the latents as class scores; one-vs-rest macro average for more
    than two classes) of latents in a labels target space against the trials' classes, with chance levels."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=str)
    z = np.asarray(latents, dtype=np.float64)
    classes = np.asarray(target.classes_, dtype=str)
    scores = score_outputs("classification", predicted_classes(target, z), y, classes=classes, pipeline=pipeline)
    present = [k for k, c in enumerate(classes) if 0 < (y == c).sum() < len(y)]
    if len(present) >= 2:
        if len(classes) == 2:
            auc = roc_auc_score(y == classes[1], z[:, 1] - z[:, 0])
        else:
            auc = float(np.mean([roc_auc_score(y == classes[k], z[:, k]) for k in present]))
        row = {**scores.table.iloc[0].to_dict(), "metric": "roc_auc", "value": float(auc), "chance": 0.5}
        scores = Scores(pd.concat([scores.table, pd.DataFrame([row])], ignore_index=True))
    return scores


def confusion(target: Any, latents: np.ndarray, labels: Sequence[str]) -> dict[str, Any]:
    """The confusion matrix of latents in a labels target space: ``{"classes": [...], "matrix": rows = true class,
    columns = predicted class (counts)}``."""
    from sklearn.metrics import confusion_matrix

    classes = list(target.classes_)
    matrix = confusion_matrix(np.asarray(labels, dtype=str), predicted_classes(target, latents), labels=classes)
    return {"classes": classes, "matrix": matrix.tolist(), "rows": "true class", "columns": "predicted class"}


def with_intervals(scores: Scores, per_trial: pd.DataFrame, seed: int = 0, confidence: float = 0.95) -> Scores:
    """``scores`` with ``ci_low`` / ``ci_high`` (bootstrap over trials) on the rows whose per-trial values are in
    ``per_trial`` (:func:`~neurodecode.core.scores.trial_scores`); NaN elsewhere."""
    table = scores.table.copy()
    table["ci_low"], table["ci_high"] = np.nan, np.nan
    if len(per_trial) >= 2:
        for column, metric in TRIAL_METRICS.items():
            rows = table["metric"] == metric
            if column in per_trial and rows.any():
                table.loc[rows, ["ci_low", "ci_high"]] = mean_interval(per_trial[column], confidence=confidence,
                                                                       seed=seed)
    return Scores(table)


def image_scores(name: str, images: np.ndarray, true_images: np.ndarray) -> Scores:
    """PixCorr / SSIM of images (n, H, W, C) against the true images, resized to the reconstructions' format."""
    return score_outputs("images", images, resize_images(true_images, images.shape[1], images.shape[-1]),
                         pipeline=name)


def caption_scores_exact(captions: Sequence[str], references: Sequence[str], name: str = "captions") -> Scores:
    """BLEU-4 / ROUGE-L (:func:`~neurodecode.evaluation.metrics.caption_scores`) plus the exact-match rate, whose
    chance is the frequency of the commonest reference caption."""
    scores = score_outputs("captions", list(captions), list(references), pipeline=name)
    freq = pd.Series(list(references)).value_counts(normalize=True)
    exact = float(np.mean([c == r for c, r in zip(captions, references, strict=True)]))
    return scores + Scores(pd.DataFrame([{"kind": "captions", "metric": "exact_match", "pipeline": name,
                                          "value": exact, "chance": float(freq.max()), "n_items": len(captions)}]))


def gallery_retrieval(target: Any, latents: np.ndarray, true_ids: Sequence[str] | None,
                      trial_ids: Sequence[str] | None = None, k: int = 5) -> tuple[list[dict[str, Any]], Scores | None]:
    """Each trial's top-``k`` stimuli of the target space's gallery (``TargetSpace.retrieve``, the
    retrieval output) and the rank of its true stimulus (None when unknown or not in the
    gallery), with gallery top-1 / top-5 accuracies over the trials whose stimulus is in the gallery.

    Similarities are cosines; ranks come from :func:`~neurodecode.core.scores.gallery_rank`.
    """
    gallery, gallery_ids = target.gallery_, list(target.gallery_ids_ or [])
    top = target.retrieve(latents, k)
    where = {g: i for i, g in enumerate(gallery_ids)}
    known = [i for i, s in enumerate(true_ids or []) if s in where]
    ranks = np.full(len(latents), -1.0)
    if known:
        ahead, tied = gallery_rank(latents[known], gallery, [where[true_ids[i]] for i in known], return_ties=True)
        ranks[known] = ahead + 0.5 * tied
    trials = [str(t) for t in trial_ids] if trial_ids is not None else [str(i) for i in range(len(latents))]
    rows = [{"trial": trials[i], f"top{k}": top[i], "true_rank": float(ranks[i]) if ranks[i] >= 0 else None}
            for i in range(len(latents))]
    if not known:
        return rows, None
    g = len(gallery_ids)
    table = pd.DataFrame([{"kind": "retrieval", "metric": f"gallery_top{kk}",
                           "value": float(topk_hits(ahead, tied, kk).mean()), "chance": kk / g,
                           "n_items": len(known), "pipeline": f"gallery of {g}"} for kk in (1, 5)
                          if kk == 1 or kk < g])    # top-k of a gallery of at most k stimuli is always a hit
    return rows, Scores(table)


def format_scores(rows: Sequence[dict[str, Any]], indent: str = "") -> list[str]:
    """One line per score row (pipeline, kind, metric, value, chance when there is one)."""
    lines = []
    for row in rows:
        chance = row.get("chance")
        chance = "" if chance is None or chance != chance else f" (chance {chance:.3g})"
        lines.append(f"{indent}{row.get('pipeline', ''):>15} {row['kind']:>10} {row['metric']:<13} "
                     f"{row['value']:.3f}{chance}")
    return lines
