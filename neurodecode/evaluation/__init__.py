"""Stage 5 — evaluation: one harness for classes, retrieved stimuli, images, captions and 3D objects.

* :mod:`.classification` — MOABB-style evaluations (:func:`evaluate`: within-session, cross-session,
  cross-subject) with per-fold scores and confidence intervals.
* :mod:`.retrieval` — two-way identification, top-k retrieval among seeded pools, gallery ranks.
* :mod:`.metrics` — :func:`score_outputs` → :class:`Scores` (images, captions, meshes, retrieval, classes).
* :mod:`.scoring` — scoring a decoded set of trials (latents, reconstructions, captions, gallery retrieval).
* :mod:`.report` — the self-contained HTML report.

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from neurodecode.evaluation.classification import SCHEMES, EvaluationResult, evaluate, score_predictions
from neurodecode.evaluation.metrics import ImageFeatures, Scores, score_outputs
from neurodecode.core.scores import gallery_rank, retrieval_accuracy, two_way_identification

__all__ = ["SCHEMES", "EvaluationResult", "ImageFeatures", "Scores", "evaluate", "gallery_rank",
           "retrieval_accuracy", "score_outputs", "score_predictions", "two_way_identification"]
