"""MOABB's own evaluation beside neurodecode's on the 10 shared EEGMMIDB subjects: the same epochs, folds and
pipelines, MOABB's score next to neurodecode's for every subject.

MOABB's ``PhysionetMI`` reads the shared EDF files offline (linked where its downloader looks, in a temporary folder:
:func:`neurodecode.loaders.moabb.offline_physionet_mi`); ``LeftRightImagery(fmin=7, fmax=30)`` cuts them (0.5-3 s
after the cue, MOABB's window for this set); ``WithinSessionEvaluation(random_state=42)`` scores each pipeline
(ROC-AUC, 5-fold stratified per session). neurodecode reads the same epochs with ``from_moabb`` and scores the same
pipelines with ``evaluate(..., "within_session", seed=42)``. Pipelines: pyRiemann's OAS covariances + tangent
space + logistic regression (MOABB's usual TS+LR), the same with neurodecode's estimators, and MNE's CSP (8
components, log-variance) + LDA.

    python benchmarks/eval_moabb.py [--data ../shared/data] [--out results/] [--subjects 10]

About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import tempfile
import time

NAME = "eval_moabb"


def pipelines() -> dict:
    from mne.decoding import CSP
    from pyriemann.estimation import Covariances as PyrCovariances
    from pyriemann.tangentspace import TangentSpace as PyrTangentSpace
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from neurodecode.evaluation.classification import recipe_classifier

    return {"TS + LR (pyRiemann)": make_pipeline(PyrCovariances("oas"), PyrTangentSpace(),
                                                 LogisticRegression(max_iter=1000)),
            "TS + LR (neurodecode)": recipe_classifier("tangent_space", ["estimator=oas"]),
            "CSP + LDA (MNE)": make_pipeline(CSP(n_components=8, log=True), LinearDiscriminantAnalysis())}


def main() -> None:
    import numpy as np

    from neurodecode import evaluate
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.moabb import from_moabb, offline_physionet_mi

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--subjects", type=int, default=10, help="the first N of S001-S010")
    args = p.parse_args()
    from moabb.evaluations import WithinSessionEvaluation
    from moabb.paradigms import LeftRightImagery

    subjects = list(range(1, args.subjects + 1))
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        dataset = offline_physionet_mi(args.data, folder, subjects)
        paradigm = LeftRightImagery(fmin=7, fmax=30)
        t0 = time.perf_counter()
        theirs = WithinSessionEvaluation(paradigm=paradigm, datasets=[dataset], random_state=42, overwrite=True,
                                         hdf5_path=f"{folder}/results", save_model=False).process(pipelines())
        moabb_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        epochs = from_moabb(dataset, paradigm)
        for name, pipe in pipelines().items():
            ours = evaluate(epochs, pipe, "within_session", seed=42).scores
            ours = ours[ours["metric"] == "roc_auc"].groupby("subject")["value"].mean()
            sel = theirs[theirs["pipeline"] == name]
            mine = sel.set_index(sel["subject"].astype(str))["score"]
            diff = float(np.max(np.abs(ours.sort_index().to_numpy() - mine.loc[ours.sort_index().index].to_numpy())))
            results[name] = {"moabb_roc_auc": round(float(mine.mean()), 4), "neurodecode_roc_auc":
                             round(float(ours.mean()), 4), "max_abs_difference": diff,
                             "per_subject": {s: [round(float(mine[s]), 4), round(float(ours[s]), 4)]
                                             for s in ours.index}}
            print(f"  {name:24s} MOABB {mine.mean():.3f}   neurodecode {ours.mean():.3f}   max |diff| over subjects "
                  f"{diff:.1e}", flush=True)
        ours_s = time.perf_counter() - t0
    results["seconds"] = {"moabb": round(moabb_s, 1), "neurodecode (with reading the epochs)": round(ours_s, 1)}
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
