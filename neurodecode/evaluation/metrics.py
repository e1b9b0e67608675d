"""One evaluation harness for every decoded output: classes, retrieved stimuli, images, captions and 3D objects.

:func:`score_outputs` scores one kind of output against its ground truth and returns a :class:`Scores` — a tidy
table (one row per metric, with its chance level), combinable with ``+``, written as JSON and drawn as a plot. All
random parts (candidate pools, n-way distractors) are seeded, so the same call scores the same candidates.

Metrics, by kind:

* ``classification``: accuracy, balanced accuracy, ROC-AUC (:func:`neurodecode.evaluation.classification.score_predictions`).
* ``retrieval``: top-k among random pools in both directions and two-way identification
  (:mod:`neurodecode.core.scores`; MindEye's 300 candidates × 30 repeats).
* ``images``: PixCorr, SSIM (MindEye's settings) and two-way identification in the feature space of configurable
  networks (:class:`ImageFeatures`: a torchvision model layer such as AlexNet's ``features.4`` / ``features.11``
  as MindEye, an open_clip embedder, or any function).
* ``captions``: BLEU-4 (sacrebleu), ROUGE-L (Google's rouge-score) and CLIP text similarity with two-way
  identification in the text-embedding space (any :class:`~neurodecode.alignment.embeddings.OpenCLIPEmbedder`). METEOR needs
  NLTK's WordNet download and is not computed.
* ``meshes``: Chamfer distance and F-score between point clouds sampled from the surfaces, and n-way top-1 on
  features of rendered views (MinD-3D's protocol with a configurable feature network).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from neurodecode.core.persistence import dumps
from neurodecode.core.scores import (as_matrix, check_pair, compare, normalize_rows, retrieval_accuracy, topk_hits,
                                             two_way_identification)

__all__ = ["KINDS", "ImageFeatures", "Scores", "caption_scores", "chamfer_distance", "f_score", "image_trial_scores",
           "mismatched_chance", "n_way_top1", "pixcorr", "score_outputs", "ssim"]

KINDS = ("classification", "retrieval", "images", "captions", "meshes")
EXACT = "donot_use_mm_for_euclid_dist"  # exact distances (the matrix-product form leaves ~1e-8 for equal points)


# -- images --------------------------------------------------------------------------------------------------------

def pixcorr(pred: Any, true: Any) -> float:
    """Mean Pearson correlation between flattened predicted and true images (n, ...)."""
    p, t = check_pair(pred, true)
    return float((normalize_rows(p, "pearson") * normalize_rows(t, "pearson")).sum(1).mean())


def _grey(a: Any, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 4 and a.shape[-1] in (1, 3):  # (n, H, W, C) → luminance (ITU-R 601, as skimage's rgb2gray)
        a = a[..., 0] if a.shape[-1] == 1 else a @ np.array([0.2125, 0.7154, 0.0721])
    if a.ndim != 3:
        raise ValueError(f"field '{name}': expected images (n, H, W) or (n, H, W, C), got shape {a.shape}")
    return a


#: smallest image side for SSIM with Gaussian weights (σ = 1.5 → an 11-pixel window)
SSIM_MIN_SIZE = 11


def ssim(pred: Any, true: Any, data_range: float | None = None) -> float:
    """Mean structural similarity of grey-level images — scikit-image, Gaussian weights σ = 1.5, as MindEye.

    Colour images (n, H, W, 3) are converted to luminance first (as MindEye). ``data_range`` defaults to the
    range of ``true``.
    """
    from skimage.metrics import structural_similarity

    p, t = _grey(pred, "pred"), _grey(true, "true")
    if p.shape != t.shape:
        raise ValueError(f"field 'pred': expected images of the shape of 'true' {t.shape}, got {p.shape}")
    if min(t.shape[1:]) < SSIM_MIN_SIZE:
        raise ValueError(f"field 'true': SSIM with Gaussian weights (σ = 1.5, an 11-pixel window) needs images of at "
                         f"least {SSIM_MIN_SIZE} × {SSIM_MIN_SIZE} pixels, got {t.shape[1]} × {t.shape[2]}")
    rng = float(t.max() - t.min()) if data_range is None else float(data_range)
    return float(np.mean([structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                                data_range=rng) for a, b in zip(p, t, strict=True)]))


#: at most this many mismatched pairings per trial for SSIM's chance level (each an SSIM per trial)
SSIM_CHANCE_SHIFTS = 5


def mismatched_chance(pred: Any, true: Any) -> dict[str, float]:
    """Chance levels of PixCorr and SSIM: the scores of predictions against other trials' stimuli.

    A reconstruction that only captures what all stimuli share (the mean image, the background) scores well above
    0 on PixCorr; the chance a result must beat is the score of the same predictions paired with the wrong
    stimuli. PixCorr's is the mean over every mismatched pair; SSIM's over up to ``SSIM_CHANCE_SHIFTS`` (5)
    cyclic re-pairings (trial ``i`` with trial ``i + s``). Pairs whose true images are equal (repeats of one
    stimulus) are left out.

    Parameters
    ----------
    pred, true : array-like, shape (n_trials, H, W) or (n_trials, H, W, C)
        Predicted and true images of the same trials.

    Returns
    -------
    chance : dict
        ``{"pixcorr": float, "ssim": float}`` (SSIM only for images of at least ``SSIM_MIN_SIZE`` pixels a side;
        NaN where fewer than two distinct stimuli).
    """
    p, t = check_pair(pred, true)
    pn, tn = normalize_rows(p, "pearson").numpy(), normalize_rows(t, "pearson").numpy()
    t_flat = np.asarray(t).reshape(len(t), -1)
    same = np.array([[np.array_equal(a, b) for b in t_flat] for a in t_flat]) if len(t) <= 2000 else \
        (tn @ tn.T > 1 - 1e-12)
    other = ~same
    out = {"pixcorr": float((pn @ tn.T)[other].mean()) if other.any() else float("nan")}
    pg, tg = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if pg.ndim >= 3 and min(tg.shape[1:3]) >= SSIM_MIN_SIZE:
        rng = float(tg.max() - tg.min())
        vals = []
        for shift in range(1, min(len(tg), SSIM_CHANCE_SHIFTS + 1)):
            j = (np.arange(len(tg)) + shift) % len(tg)
            keep = other[np.arange(len(tg)), j]
            if keep.any():
                vals.append(ssim(pg[keep], tg[j[keep]], data_range=rng))
        out["ssim"] = float(np.mean(vals)) if vals else float("nan")
    return out


class ImageFeatures:
    """Features of images from one layer of a torchvision model, for two-way identification in its space.

    Parameters
    ----------
    model : str
        A torchvision classification model name (``"alexnet"``, ``"inception_v3"``, ``"resnet50"``...).
    layer : str
        Node name (``torchvision.models.feature_extraction.get_graph_node_names``), e.g. AlexNet's ``"features.4"``
        (MindEye's "AlexNet(2)") or ``"features.11"`` ("AlexNet(5)").
    pretrained : bool
        Load the model's default ImageNet weights (downloaded once by torchvision; needs the internet the first
        time). ``False`` gives a randomly initialised network (seeded) — for tests only.
    image_size : int
        Images are resized to this square size and normalised with ImageNet statistics.
    device : str

    ``ImageFeatures(...)(images (n, H, W) or (n, H, W, C) in [0, 1]) -> (n, n_features)``.
    """

    def __init__(self, model: str = "alexnet", layer: str = "features.4", pretrained: bool = True,
                 image_size: int = 224, device: str = "cpu", seed: int = 0) -> None:
        import torchvision
        from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

        if model not in torchvision.models.list_models(torchvision.models):
            raise ValueError(f"field 'model': expected a torchvision classification model, got {model!r}")
        torch.manual_seed(seed)
        try:
            net = torchvision.models.get_model(model, weights="DEFAULT" if pretrained else None)
        except Exception as err:  # noqa: BLE001 - download errors come in many types
            raise RuntimeError(f"could not load torchvision's pretrained weights for {model!r} ({err}). They are "
                               f"downloaded once into {torch.hub.get_dir()}; copy them there on an offline "
                               "machine, or pass pretrained=False for random features (tests only)") from None
        nodes = get_graph_node_names(net)[1]
        if layer not in nodes:
            raise ValueError(f"field 'layer': expected a node of {model} (e.g. {nodes[1:6]}), got {layer!r}")
        self.extractor = create_feature_extractor(net.eval(), {layer: "out"}).to(device)
        self.name, self.image_size, self.device = f"{model}:{layer}", image_size, device

    @torch.no_grad()
    def __call__(self, images: Any, batch_size: int = 64) -> np.ndarray:
        a = np.asarray(images, dtype=np.float32)
        if a.ndim == 3:
            a = np.repeat(a[..., None], 3, axis=-1)
        if a.ndim != 4 or a.shape[-1] not in (1, 3):
            raise ValueError(f"field 'images': expected (n, H, W) or (n, H, W, C) in [0, 1], got shape {a.shape}")
        x = torch.as_tensor(a).permute(0, 3, 1, 2).expand(-1, 3, -1, -1)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        out = []
        for i in range(0, len(x), batch_size):
            xb = torch.nn.functional.interpolate(x[i:i + batch_size], size=(self.image_size, self.image_size),
                                                 mode="bilinear", align_corners=False, antialias=True)
            out.append(self.extractor(((xb - mean) / std).to(self.device))["out"].flatten(1).cpu())
        return torch.cat(out).numpy()


# -- captions ------------------------------------------------------------------------------------------------------

def _keep_absl_off_stderr() -> None:
    """rouge_score imports absl, whose log handler keeps the ``sys.stderr`` of its import time and *closes* it when
    logging is next reconfigured (every Hydra run does) unless it is the current one: a redirected or captured
    stderr would be closed under its owner. Point it at the process' own stderr, which absl never closes."""
    import sys

    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler().python_handler
    if handler.stream is not sys.__stderr__:
        handler.stream = sys.__stderr__


def _quiet_rouge(rouge_scorer: Any) -> Any:
    """rouge_score's ``RougeScorer`` built without side effects on logging: it logs through absl, which calls
    ``logging.basicConfig()`` when the root logger has no handler — a console handler that then repeats every
    ``neurodecode`` line as ``INFO:neurodecode:...``. A placeholder root handler for the call prevents that."""
    import logging

    root = logging.getLogger()
    guard = None if root.handlers else logging.NullHandler()
    if guard is not None:
        root.addHandler(guard)
    try:
        return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    finally:
        if guard is not None:
            root.removeHandler(guard)


def caption_scores(pred: Sequence[str], refs: Sequence[str] | Sequence[Sequence[str]], *,
                   embedder: Any = None) -> dict[str, float]:
    """BLEU-4 and ROUGE-L of predicted captions against references; CLIP text similarity with an embedder.

    Parameters
    ----------
    pred : list of str (n,)
    refs : list of str (n,) or list of lists (n, n_refs)
        One or several references per prediction.
    embedder : OpenCLIPEmbedder, optional
        Adds ``clip_text_similarity`` (mean cosine between each prediction and its first reference) and
        ``clip_text_two_way``.

    Returns
    -------
    dict
        ``bleu4`` (sacrebleu corpus BLEU / 100), ``rouge_l`` (mean best F over references), and the CLIP entries.
    """
    import sacrebleu
    from rouge_score import rouge_scorer

    _keep_absl_off_stderr()
    pred = [str(p) for p in pred]
    refs = [[r] if isinstance(r, str) else [str(x) for x in r] for r in refs]
    if len(pred) != len(refs) or not pred:
        raise ValueError(f"field 'refs': expected one reference (or list of references) per prediction "
                         f"({len(pred)}), got {len(refs)}")
    n_refs = max(len(r) for r in refs)
    streams = [[r[j] if j < len(r) else r[0] for r in refs] for j in range(n_refs)]
    out = {"bleu4": float(sacrebleu.corpus_bleu(pred, streams).score) / 100.0}
    scorer = _quiet_rouge(rouge_scorer)
    out["rouge_l"] = float(np.mean([max(scorer.score(r, p)["rougeL"].fmeasure for r in rs)
                                    for p, rs in zip(pred, refs, strict=True)]))
    if embedder is not None:
        P, R = embedder.embed_texts(pred), embedder.embed_texts([r[0] for r in refs])
        out["clip_text_similarity"] = float((normalize_rows(as_matrix(P, "pred"), "cosine")
                                             * normalize_rows(as_matrix(R, "refs"), "cosine")).sum(1).mean())
        if len(pred) > 1:
            out["clip_text_two_way"] = two_way_identification(P, R, metric="cosine")
    return out


# -- 3D ------------------------------------------------------------------------------------------------------------

def _points(a: Any, name: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a, dtype=np.float64))
    if t.ndim == 2:
        t = t[None]
    if t.ndim != 3 or t.shape[-1] != 3:
        raise ValueError(f"field '{name}': expected point clouds (n_points, 3) or (batch, n_points, 3), got shape "
                         f"{tuple(t.shape)}")
    return t


def _nearest(pred: Any, true: Any, block: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances from each predicted point to its nearest true point and back, (batch, n_pred) and (batch, n_true),
    computed in blocks; the two sides are checked to be point clouds in equal numbers."""
    a, b = _points(pred, "pred"), _points(true, "true")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"field 'pred': expected {b.shape[0]} point clouds like 'true', got {a.shape[0]}")
    d_ab = torch.cat([torch.cdist(a[:, i:i + block], b, compute_mode=EXACT).min(2).values for i in range(0, a.shape[1], block)], 1)
    d_ba = torch.cat([torch.cdist(b[:, i:i + block], a, compute_mode=EXACT).min(2).values for i in range(0, b.shape[1], block)], 1)
    return d_ab, d_ba


def chamfer_distance(pred: Any, true: Any, squared: bool = False) -> np.ndarray:
    """Symmetric Chamfer distance: mean nearest-neighbour distance pred→true plus true→pred.

    Parameters
    ----------
    pred, true : array (n_points, 3) or (batch, n_points, 3)
    squared : bool
        Use squared distances (the convention of many 3D papers); default Euclidean.

    Returns
    -------
    ndarray (batch,)
    """
    d_ab, d_ba = _nearest(pred, true)
    if squared:
        d_ab, d_ba = d_ab**2, d_ba**2
    return (d_ab.mean(1) + d_ba.mean(1)).numpy()


def f_score(pred: Any, true: Any, threshold: float = 0.01) -> np.ndarray:
    """F-score at distance ``threshold``: harmonic mean of precision (pred points near true) and recall.

    Returns
    -------
    ndarray (batch,)
    """
    d_ab, d_ba = _nearest(pred, true)
    precision = (d_ab < threshold).double().mean(1)
    recall = (d_ba < threshold).double().mean(1)
    return torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall),
                       torch.zeros_like(precision)).numpy()


def n_way_top1(pred: Any, true: Any, n_way: int = 2, n_trials: int = 100, seed: int = 0,
               metric: str = "cosine") -> float:
    """n-way top-1 identification: each prediction against its target and ``n_way - 1`` random other targets.

    Averaged over ``n_trials`` seeded draws per item; chance ``1 / n_way``. ``n_way=2`` with all pairs is
    :func:`~neurodecode.core.scores.two_way_identification`.
    """
    p, t = check_pair(pred, true)
    n = p.shape[0]
    if not 2 <= n_way <= n:
        raise ValueError(f"field 'n_way': expected 2 <= n_way <= n_items = {n}, got {n_way}")
    S = normalize_rows(p, metric) @ normalize_rows(t, metric).T
    rng = np.random.default_rng(seed)
    hits = 0.0
    for i in range(n):
        others = np.delete(np.arange(n), i)
        draws = np.stack([rng.choice(others, size=n_way - 1, replace=False) for _ in range(n_trials)])
        ahead, tied = compare(S[i, torch.as_tensor(draws)], S[i, i].expand(n_trials, 1))
        hits += float(topk_hits(ahead, tied, 1).mean())          # a tie counts by the retrieval module's rule
    return hits / n


def image_trial_scores(pred: Any, true: Any) -> pd.DataFrame:
    """Per-trial PixCorr and (for sides ≥ 11 pixels) SSIM of images (n_trials, H, W[, C]) against the truth, with
    the settings of :func:`~neurodecode.evaluation.metrics.ssim` (data range of the whole true set), so that their
    means are the set's scores."""
    a, b = check_pair(pred, true)
    out = pd.DataFrame({"pixcorr": (normalize_rows(a, "pearson") * normalize_rows(b, "pearson")).sum(1).numpy()})
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if min(t.shape[1:3]) >= SSIM_MIN_SIZE:
        rng = float(t.max() - t.min())
        out["ssim"] = [ssim(p[i:i + 1], t[i:i + 1], data_range=rng) for i in range(len(t))]
    return out



# -- the harness ---------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class Scores:
    """A tidy table of scores: columns ``kind, metric, value, chance, n_items`` (+ ``pipeline`` when named)."""

    table: pd.DataFrame

    def __add__(self, other: Scores) -> Scores:
        return Scores(pd.concat([self.table, other.table], ignore_index=True))

    def to_json(self, path: str | Path | None = None) -> str:
        text = dumps(self.table.to_dict(orient="records"), indent=1)      # strict JSON: no bare NaN
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path: str | Path | None = None) -> Any:
        """One panel per output kind, one bar per metric (grouped by pipeline when there are several), with
        confidence intervals (``ci_low`` / ``ci_high`` when the table has them, else ± sd over repeated rows such as
        seeds) and each metric's chance level as a dashed red line across its group."""
        import matplotlib.pyplot as plt

        from neurodecode.evaluation.plots import finish_figure

        stats = _plot_stats(self.table)
        kinds = list(dict.fromkeys(stats["kind"]))
        colour = dict(zip(dict.fromkeys(stats["pipeline"]), plt.rcParams["axes.prop_cycle"].by_key()["color"] * 9))
        ncols = min(2, len(kinds))
        nrows = -(-len(kinds) // ncols)
        bars = max(stats[stats["kind"] == k]["metric"].nunique() * stats[stats["kind"] == k]["pipeline"].nunique()
                   for k in kinds)
        fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * max(4.5, 0.32 * bars + 2), nrows * 3.8),
                                 squeeze=False)
        for ax, kind in zip(axes.flat, kinds):
            sub = stats[stats["kind"] == kind]
            metrics, pipelines = list(dict.fromkeys(sub["metric"])), list(dict.fromkeys(sub["pipeline"]))
            for i, m in enumerate(metrics):                 # the pipelines that have this metric, centred on it
                rows = sub[sub["metric"] == m]
                width = 0.8 / len(rows)
                xs = i + (np.arange(len(rows)) - (len(rows) - 1) / 2) * width
                ax.bar(xs, rows["mean"], width=width, color=[colour[p] for p in rows["pipeline"]])
                shown = (rows["low"] < rows["high"]).to_numpy()
                ax.errorbar(xs[shown], rows["mean"][shown], yerr=np.vstack([
                    rows["mean"] - rows["low"], rows["high"] - rows["mean"]])[:, shown].clip(min=0), fmt="none",
                    ecolor="k", capsize=3, lw=1)
            for i, m in enumerate(metrics):
                chance = sub[sub["metric"] == m]["chance"].dropna()
                if len(chance):
                    ax.hlines(chance.iloc[0], i - 0.45, i + 0.45, colors="tab:red", linestyles="--", lw=1.2)
            ax.set_xticks(range(len(metrics)), metrics, rotation=30, ha="right", fontsize=9)
            ax.set_title(kind, fontsize=10)
            ax.set_ylabel("score (dashed: chance)", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
            if any(pipelines):
                from matplotlib.patches import Patch

                ax.legend(handles=[Patch(color=colour[p], label=p) for p in pipelines], fontsize=7, loc="best",
                          framealpha=0.8)
        for ax in list(axes.flat)[len(kinds):]:
            ax.axis("off")
        return finish_figure(fig, path)


def _plot_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Per (kind, pipeline, metric): mean, interval and chance for :meth:`Scores.plot`."""
    tab = table.copy()
    tab["pipeline"] = tab["pipeline"].fillna("") if "pipeline" in tab else ""
    for col in ("ci_low", "ci_high"):
        if col not in tab:
            tab[col] = np.nan
    stats = tab.groupby(["kind", "pipeline", "metric"], sort=False).agg(
        mean=("value", "mean"), sd=("value", "std"), chance=("chance", "first"), ci_low=("ci_low", "first"),
        ci_high=("ci_high", "first"), n=("value", "size")).reset_index()
    sd = stats["sd"].where(stats["n"] > 1, 0.0).fillna(0.0)
    stats["low"] = stats["ci_low"].where(stats["ci_low"].notna() & (stats["n"] == 1), stats["mean"] - sd)
    stats["high"] = stats["ci_high"].where(stats["ci_high"].notna() & (stats["n"] == 1), stats["mean"] + sd)
    return stats


def _rows(kind: str, values: Mapping[str, float], chance: Mapping[str, float], n: int) -> list[dict]:
    return [{"kind": kind, "metric": m, "value": float(v), "chance": chance.get(m, np.nan), "n_items": n}
            for m, v in values.items()]


def score_outputs(kind: str, pred: Any, true: Any, *, seed: int = 0, pipeline: str | None = None,
                  **options: Any) -> Scores:
    """Score decoded outputs of one kind against the truth.

    Parameters
    ----------
    kind : {"classification", "retrieval", "images", "captions", "meshes"}
    pred, true :
        * classification: predicted and true labels (n,); ``options``: ``scores`` (n, n_classes), ``classes``.
        * retrieval: predicted and target embeddings (n, embed_dim); ``options``: ``k`` (int or list, default
          (1, 5)), ``pool_size`` (300), ``n_repeats`` (30), ``metric`` ("cosine").
        * images: predicted and true images (n, H, W) or (n, H, W, C) in [0, 1] (SSIM for sides ≥ 11 pixels);
          ``options``: ``networks`` (list of
          :class:`ImageFeatures` or ``(name, function)`` pairs) for two-way identification in their spaces.
        * captions: predicted captions and references; ``options``: ``embedder``.
        * meshes: predicted and true point clouds (n, n_points, 3); ``options``: ``threshold`` (F-score, 0.01),
          ``render_features`` — a pair of arrays (n, d) of features of rendered views of predicted and true
          objects, for n-way top-1 (``n_way``, default 2 and 10 when there are enough items).
    seed : int
        Seeds candidate pools and distractors.
    pipeline : str, optional
        A name stored in the table (to compare pipelines in one table / plot).
    """
    if kind not in KINDS:
        raise ValueError(f"field 'kind': expected one of {KINDS}, got {kind!r}")
    rows = _SCORERS[kind](pred, true, seed, options)
    table = pd.DataFrame(rows, columns=["kind", "metric", "value", "chance", "n_items"])
    if pipeline is not None:
        table.insert(0, "pipeline", pipeline)
    table["seed"] = seed
    return Scores(table)


def _score_classification(pred: Any, true: Any, seed: int, options: Mapping[str, Any]) -> list[dict]:
    from neurodecode.evaluation.classification import score_predictions

    y_true, y_pred = np.asarray(true), np.asarray(pred)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"field 'pred': expected one label per item ({y_true.shape}), got {y_pred.shape}")
    classes = np.asarray(options.get("classes", np.unique(y_true)))
    values = score_predictions(y_true, y_pred, options.get("scores"), classes)
    return _rows("classification", values, {"accuracy": 1 / len(classes), "balanced_accuracy": 1 / len(classes),
                                            "roc_auc": 0.5}, len(y_true))


def _score_retrieval(pred: Any, true: Any, seed: int, options: Mapping[str, Any]) -> list[dict]:
    ks = options.get("k", (1, 5))
    ks = [ks] if isinstance(ks, int) else list(ks)
    n = check_pair(pred, true)[0].shape[0]
    values, chance = {}, {}
    for k in ks:
        pool = options.get("pool_size", 300)
        if k > min(n, pool or n):
            raise ValueError(f"field 'k': expected k <= the candidate pool ({min(n, pool or n)} items), got {k}; "
                             "the gallery is smaller than k")
        r = retrieval_accuracy(pred, true, k=k, pool_size=pool, n_repeats=options.get("n_repeats", 30),
                               seed=seed, metric=options.get("metric", "cosine"))
        values[f"image_top{k}"], values[f"brain_top{k}"] = r[f"image_top{k}"], r[f"brain_top{k}"]
        chance[f"image_top{k}"] = chance[f"brain_top{k}"] = k / r["pool_size"]
    values["two_way"], chance["two_way"] = two_way_identification(pred, true, options.get("metric", "cosine")), .5
    return _rows("retrieval", values, chance, n)


def _score_images(pred: Any, true: Any, seed: int, options: Mapping[str, Any]) -> list[dict]:
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"field 'pred': expected images of the shape of 'true' {t.shape}, got {p.shape}")
    values = {"pixcorr": pixcorr(p, t)}
    if min(t.shape[1:3]) >= SSIM_MIN_SIZE:          # smaller images have no SSIM (see ssim)
        values["ssim"] = ssim(p, t)
    chance = mismatched_chance(p, t)                # the predictions against other trials' stimuli
    for net in options.get("networks", ()):
        name, fn = (net if isinstance(net, tuple) else (getattr(net, "name", type(net).__name__), net))
        values[f"two_way[{name}]"], chance[f"two_way[{name}]"] = two_way_identification(fn(p), fn(t)), 0.5
    return _rows("images", values, chance, len(p))


def _score_captions(pred: Any, true: Any, seed: int, options: Mapping[str, Any]) -> list[dict]:
    values = caption_scores(pred, true, embedder=options.get("embedder"))
    return _rows("captions", values, {"clip_text_two_way": 0.5}, len(pred))


def _score_meshes(pred: Any, true: Any, seed: int, options: Mapping[str, Any]) -> list[dict]:
    threshold = float(options.get("threshold", 0.01))
    values = {"chamfer": float(chamfer_distance(pred, true).mean()),
              f"f_score@{threshold:g}": float(f_score(pred, true, threshold).mean())}
    chance: dict[str, float] = {}
    feats = options.get("render_features")
    if feats is not None:
        fp, ft = feats
        for n_way in options.get("n_way", [w for w in (2, 10) if w <= len(fp)]):
            values[f"{n_way}_way_top1"] = n_way_top1(fp, ft, n_way=n_way, seed=seed)
            chance[f"{n_way}_way_top1"] = 1 / n_way
    return _rows("meshes", values, chance, len(_points(true, "true")))


_SCORERS = {"classification": _score_classification, "retrieval": _score_retrieval, "images": _score_images,
            "captions": _score_captions, "meshes": _score_meshes}
