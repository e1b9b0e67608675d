"""Stage 5 — evaluation: one harness for classes, retrieved stimuli, images, captions and 3D objects.

* :mod:`.classification` — MOABB-style evaluations (:func:`evaluate`: within-session, cross-session,
  cross-subject) with per-fold scores and confidence intervals.
* :mod:`.metrics` — :func:`score_outputs` → :class:`Scores` (images, captions, meshes, retrieval, classes).
* :mod:`.scoring` — scoring a decoded set of trials (latents, reconstructions, captions, gallery retrieval).
* :mod:`.report` — the self-contained HTML report.
* :mod:`.temporal` — decoding over time and temporal generalisation (MNE's sliding and generalising estimators)
  with neurodecode's folds: :func:`decode_over_time` → :class:`TimeResolvedResult`.
* :mod:`.patterns` — Haufe patterns of linear decoders (MNE's ``LinearModel``): :func:`linear_patterns` →
  :class:`LinearPatterns`, as topomaps or a NIfTI brain map; nilearn's :func:`searchlight` and
  :func:`whole_brain_decoder` (``Decoder``, ``FREMClassifier``) on voxel epochs.
* :mod:`.plots` — figures: confusion matrices, ROC curves (scikit-learn's displays), scores over time,
  temporal-generalisation matrices; saving and returning figures.
* :mod:`.benchmarks` — ``neurodecode benchmark``: datasets × pipelines × evaluations, MOABB beside.

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from neurodecode.evaluation.classification import SCHEMES, EvaluationResult, evaluate, score_predictions
from neurodecode.evaluation.metrics import ImageFeatures, Scores, score_outputs
from neurodecode.evaluation.plots import (plot_confusion_matrix, plot_roc_curve, plot_scores_over_time,
                                          plot_temporal_generalization)
from neurodecode.evaluation.patterns import LinearPatterns, linear_patterns, searchlight, whole_brain_decoder
from neurodecode.evaluation.temporal import TimeResolvedResult, decode_over_time
from neurodecode.core.scores import gallery_rank, retrieval_accuracy, two_way_identification

__all__ = ["SCHEMES", "EvaluationResult", "ImageFeatures", "LinearPatterns", "Scores", "linear_patterns", "searchlight", "whole_brain_decoder", "TimeResolvedResult", "decode_over_time",
           "evaluate", "gallery_rank", "plot_confusion_matrix", "plot_roc_curve", "plot_scores_over_time",
           "plot_temporal_generalization", "retrieval_accuracy", "score_outputs", "score_predictions", "two_way_identification"]
