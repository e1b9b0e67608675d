"""Motor imagery across the 10 shared EEGMMIDB subjects: within-session and leave-one-subject-out, the plain
references beside re-centring and a pipeline whose epoch window and alignment are chosen on the training subjects.

Data: PhysioNet EEGMMIDB S001-S010, imagery runs 4/8/12 (imagined left vs right fist, 45 trials a subject, 64
channels at 160 Hz), 7-30 Hz FIR (the data README's recipe). Pipelines, all through :func:`neurodecode.evaluate` on
the same folds (within-session: 5-fold stratified per subject, seed 42; cross-subject: leave one subject out):

* **TS + LR** and **MDM** on OAS covariances of the 1-2 s epochs — the data README's references (within 0.602 /
  0.542, leave-one-subject-out 0.551 / 0.511);
* the same with each subject re-centred on its own unlabeled epochs (``transfer="recenter"``, Zanini et al. 2018);
* **selected**: ``GridSearchCV`` over the epoch window (``TimeWindow``: 0.5-2.5 s or 0.5-4 s after the cue) and
  re-centring (``Recenter`` in the pipeline, or none), with ``LeaveOneSubjectOut`` on the 9 training
  subjects of each outer fold — the held-out subject never takes part in the choice; the choices are printed per
  held-out subject.

    python benchmarks/eval_cross_subject.py [--data ../shared/data] [--out results/]

About 8 minutes on 2 CPU cores (the selection: 4 candidates × 9 inner folds × 10 outer folds).
"""

from __future__ import annotations

NAME = "eval_cross_subject"
WINDOWS_TMIN = [0.5]
WINDOWS_TMAX = [2.5, 4.0]


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from neurodecode.encoders import MDM, Covariances, Recenter, TangentSpace
    from neurodecode.encoders.inputs import TimeWindow
    from neurodecode.evaluation.benchmarks import benchmark_parser, record_accuracy, write_results
    from neurodecode.evaluation.classification import LeaveOneSubjectOut, recipe_classifier
    from neurodecode.loaders.public import eegmmidb

    args = benchmark_parser(__doc__.splitlines()[0], NAME).parse_args()
    subjects = [f"S{i:03d}" for i in range(1, 11)]
    step = 1 / 160
    reference = eegmmidb(args.data, subjects)                                   # 1-2 s, 161 samples
    long = eegmmidb(args.data, subjects, tmin=0.5, tmax=4.0 - step)              # 0.5-4 s: every window inside
    print(f"EEGMMIDB S001-S010 imagery: {reference.n_epochs} trials × {reference.n_channels} channels; "
          f"within-session 5-fold (seed 42) and leave-one-subject-out", flush=True)
    ts = recipe_classifier("tangent_space", ["estimator=oas"])
    mdm = Pipeline([("cov", Covariances("oas")), ("mdm", MDM())])
    pipe = Pipeline([("window", TimeWindow()), ("cov", Covariances("oas")), ("recenter", Recenter()),
                     ("ts", TangentSpace()), ("lr", LogisticRegression(max_iter=1000))])
    grid = {"window__tmin": WINDOWS_TMIN, "window__tmax": [t - step for t in WINDOWS_TMAX],
            "recenter": [Recenter(), "passthrough"]}
    results: dict = {}

    def run(name: str, epochs, pipeline, scheme: str, **kw) -> None:
        print(record_accuracy(results, scheme, name, epochs, pipeline, scheme, **kw), flush=True)

    run("TS + LR, 1-2 s (reference)", reference, ts, "within_session")
    run("MDM, 1-2 s (reference)", reference, mdm, "within_session")
    run("TS + LR, 1-2 s (reference)", reference, ts, "cross_subject")
    run("MDM, 1-2 s (reference)", reference, mdm, "cross_subject")
    run("TS + LR, 1-2 s, re-centred", reference, ts, "cross_subject", transfer="recenter")
    run("TS + LR, 0.5-4 s, re-centred", long, ts, "cross_subject", transfer="recenter")

    # the selection, with the choice of each outer fold recorded
    choices = {}

    class Recorded(GridSearchCV):
        def fit(self, X, y=None, **kw):
            super().fit(X, y, **kw)
            held_out = sorted(set(long.subjects) - set(X.subjects))
            params = dict(self.best_params_)
            params["recenter"] = params["recenter"] != "passthrough"
            choices[held_out[0] if len(held_out) == 1 else str(held_out)] = params
            return self

    run("selected on the training subjects (window, re-centring)", long,
        Recorded(pipe, grid, cv=LeaveOneSubjectOut()), "cross_subject")
    for subject, params in choices.items():
        print(f"    held out {subject}: window {params['window__tmin']:g}-{params['window__tmax'] + step:g} s, "
              f"re-centring {'on' if params['recenter'] else 'off'}")
    results["selection"] = {"grid": {"tmin": WINDOWS_TMIN, "tmax": WINDOWS_TMAX, "recenter": [True, False]},
                            "chosen": choices}
    print(f"wrote {write_results(args, NAME, results, epochs={'1-2 s': reference, '0.5-4 s': long})}")


if __name__ == "__main__":
    main()
