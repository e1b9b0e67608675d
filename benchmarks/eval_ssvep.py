"""SSVEP on the shared exoskeleton set: the filter-bank tangent-space recipe, MDM and MOABB's CCA/TRCA/MsetCCA beside
the data README's reference, within-subject, cross-session and cross-subject.

Data: ``ssvep_exo/`` (Kalunga et al. 2016, MOABB's ``Kalunga2016``), subjects 1-6, 8 occipital channels at 256 Hz,
rest / 13 / 17 / 21 Hz, 2 recordings (sessions) of 32 trials per subject, epochs 2-5 s after the cue.

Pipelines (all through :func:`neurodecode.evaluate`, the same folds for every pipeline of a scheme):

* **reference** — the data README's recipe: the recording band-passed at f ± 0.5 Hz for each stimulation frequency
  (MNE's FIR, automatic transition bands), the bands stacked as channels, sample covariances, tangent space,
  logistic regression;
* **recipe** — the same with the second harmonics added (6 bands, 48 channels) — the documented SSVEP recipe
  (``ssvep_exo()``'s default; harmonics are the SSVEP literature's standard, FBCCA, not tuned here);
* the recipe with MOABB's IIR design (4th-order Butterworth forward-backward) at f ± 0.5 Hz and f ± 2 Hz;
* MDM on the recipe's covariances;
* MOABB's CCA, TRCA (3 sub-bands) and MsetCCA on the 8 raw channels (10-45 Hz), which need a stimulation frequency
  for every class: scored on the 3 flicker classes, beside the recipe on the same 3 classes.

Schemes: ``within_subject`` (5-fold stratified per subject, sessions pooled, seed 42: the reference's folds),
``cross_session`` (train on one recording, test on the other; with and without re-centring) and ``cross_subject``
(leave one subject out; with and without re-centring).

    python benchmarks/eval_ssvep.py [--data ../shared/data] [--out results/]

About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

NAME = "eval_ssvep"


def main() -> None:
    from sklearn.pipeline import Pipeline

    from neurodecode.encoders import MDM, Covariances, SSVEPClassifier
    from neurodecode.evaluation.benchmarks import benchmark_parser, record_accuracy, write_results
    from neurodecode.evaluation.classification import recipe_classifier
    from neurodecode.loaders.public import ssvep_exo

    args = benchmark_parser(__doc__.splitlines()[0], NAME).parse_args()
    ts = recipe_classifier("tangent_space", ["estimator=scm"])
    mdm = Pipeline([("cov", Covariances("scm")), ("mdm", MDM())])
    sets = {"reference (FIR f±0.5, fundamentals)": ssvep_exo(args.data, harmonics=1),
            "recipe (FIR f±0.5, + 2nd harmonics)": ssvep_exo(args.data),
            "IIR f±0.5, + 2nd harmonics": ssvep_exo(args.data, method="iir"),
            "IIR f±2, + 2nd harmonics": ssvep_exo(args.data, method="iir", width=4.0)}
    raw = ssvep_exo(args.data, steps=[{"step": "filter", "l_freq": 10.0, "h_freq": 45.0}])
    recipe = sets["recipe (FIR f±0.5, + 2nd harmonics)"]
    bank = next(step for step in recipe.processing if step["step"] == "filter_bank")
    passbands = [f["passband"] for f in bank["filters"]]
    print(f"SSVEP exoskeleton set: {recipe.n_epochs} trials, 6 subjects × 2 sessions; the recipe's FIR bands pass "
          f"{passbands} Hz at -3 dB")
    results: dict = {}

    def run(name: str, epochs, pipeline, scheme: str, **kw) -> None:
        key = scheme + (f"+{kw['transfer']}" if kw.get("transfer") else "")
        print(record_accuracy(results, key, name, epochs, pipeline, scheme, **kw), flush=True)

    for name, epochs in sets.items():
        run(name, epochs, ts, "within_subject")
    run("MDM on the recipe", recipe, mdm, "within_subject")
    flicker = (raw.table["label"] != "rest").to_numpy()
    run("recipe, 3 flicker classes", recipe[flicker], ts, "within_subject")
    for method, options in (("CCA", None), ("TRCA", {"n_fbands": 3}), ("MsetCCA", None)):
        run(f"MOABB {method}, 3 flicker classes", raw[flicker], SSVEPClassifier(method, options), "within_subject")
    for scheme in ("cross_session", "cross_subject"):
        for name in ("reference (FIR f±0.5, fundamentals)", "recipe (FIR f±0.5, + 2nd harmonics)"):
            run(name, sets[name], ts, scheme)
            run(name, sets[name], ts, scheme, transfer="recenter")
        run("MOABB CCA, 3 flicker classes", raw[flicker], SSVEPClassifier("CCA"), scheme)
    results["passbands"] = passbands
    print(f"wrote {write_results(args, NAME, results, epochs={**sets, 'raw (CCA)': raw})}")


if __name__ == "__main__":
    main()
