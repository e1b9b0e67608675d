"""MVCNet on real motor imagery, beside the plain Riemannian recipes on the same folds.

The built-in example's epochs (PhysioNet EEGMMIDB subject 1, runs 4/8/12, imagined left vs right fist, 64 channels,
7-30 Hz, 1-2 s after the cue: 45 trials) and its 5-fold stratified CV (seed 42):

* OAS + tangent space + logistic regression (the example's plain reference, 0.733);
* augmented covariance (order and lag by Takens' criteria) + tangent space + LR (the example's ACM recipe, 0.778);
* MVCNet (``conf/encoder/mvcnet``: CNN + Transformer branches, time/frequency/spatial views, cross-view and
  cross-model contrast, ``--epochs`` of AdamW), and the same network trained on the classification loss only
  (``lambda_cv = lambda_cm = 0``) to show what the contrastive terms add;
* MVCNet's training-set accuracy, which says whether it fits what it cannot generalise.

About 3 minutes on 2 CPU cores.

    python benchmarks/eval_mvcnet.py [--epochs 60] [--data ../shared/data] [--out results/eval_mvcnet]
"""

from __future__ import annotations

import time

NAME = "eval_mvcnet"


def main() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from neurodecode import build, evaluate
    from neurodecode.encoders.features import make_recipe
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import eegmmidb

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=60)
    args = p.parse_args()
    t0 = time.perf_counter()
    ep = eegmmidb(args.data)
    pipelines = {
        "OAS + tangent space + LR (plain)": make_pipeline(make_recipe("tangent_space", estimator="oas"),
                                                          LogisticRegression()),
        "augmented cov. + TS + LR (ACM)": make_pipeline(make_recipe(
            "augmented_tangent_space", estimator="oas", order="auto", lag="auto"), LogisticRegression()),
        "MVCNet": build("encoder", "mvcnet", [f"trainer.max_epochs={args.epochs}", f"seed={args.seed}"]),
        "MVCNet, classification loss only": build("encoder", "mvcnet", [
            f"trainer.max_epochs={args.epochs}", "lambda_cv=0", "lambda_cm=0", f"seed={args.seed}"]),
    }
    results = {}
    for name, pipe in pipelines.items():      # the library's folds: 5-fold stratified, seed 42, as the example
        sc = evaluate(ep, pipe, n_splits=5, seed=42, train_score=True).scores.set_index("metric")["value"]
        results[name] = {"test_accuracy": sc["accuracy"].tolist(), "train_accuracy": sc["train_accuracy"].tolist()}
    print(f"EEGMMIDB S001 imagery: {ep.n_epochs} trials × {ep.n_channels} channels × {ep.n_times} samples, 5-fold "
          f"stratified CV (seed 42); {time.perf_counter() - t0:.0f} s")
    for name, r in results.items():
        test, train = r["test_accuracy"], r["train_accuracy"]
        print(f"  {name:34s} {sum(test) / len(test):.3f} ± {_sd(test):.3f}  (training folds "
              f"{sum(train) / len(train):.3f})  folds {[round(v, 3) for v in test]}")
    print("  chance 0.511 (the larger class)")
    print(f"wrote {write_results(args, NAME, results)}")


def _sd(values: list[float]) -> float:
    m = sum(values) / len(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5


if __name__ == "__main__":
    main()
