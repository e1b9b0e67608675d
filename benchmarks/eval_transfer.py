"""Cross-subject transfer on real EEG: every ``evaluate(..., transfer=...)`` option beside no alignment.

1. **EEGMMIDB subject 1, imagined vs executed fists** (runs 4/8/12 and 3/7/11, 7-30 Hz, 1-2 s after the cue, 45
   trials each) as two stand-in subjects, each tested after training on the other, with the ``tangent_space``
   recipe + logistic regression.
2. **Muse N170 subjects 1 and 2** (faces vs houses, 4 channels, 1-30 Hz, -0.1..0.8 s), leave one subject out with
   the ``xdawn_tangent_space`` recipe (xDAWN fitted on the training subject) and plain ``tangent_space``.

Usage::

    python benchmarks/eval_transfer.py [--data ../shared/data] [--n-calibration 10] [--muse-calibration 20]
"""

from __future__ import annotations

import time
import warnings

NAME = "eval_transfer"
MUSE_STEPS = [{"step": "montage", "name": "standard_1005"}, {"step": "notch", "freqs": [50.0]},
              {"step": "filter", "l_freq": 1.0, "h_freq": 30.0}]


def table(collection, recipe: str, options: list[dict]) -> dict[str, dict[str, float]]:
    from neurodecode.evaluation import evaluate
    from neurodecode.evaluation.classification import recipe_classifier

    out = {}
    for kw in options:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # RPA's optimiser stopping at its iteration cap
            sc = evaluate(collection, recipe_classifier(recipe), "cross_subject", **kw).scores
        acc = sc[sc["metric"] == "accuracy"].set_index("subject")
        cells = "  ".join(f"{s}: {v:.3f} (n={int(acc.loc[s, 'n_test'])})" for s, v in acc["value"].items())
        name = kw.get("transfer") or "none"
        print(f"{recipe:22s} {name:12s} cal={kw.get('n_calibration', 0):<3d} {cells}  "
              f"[{time.perf_counter() - t:.1f} s]", flush=True)
        out[f"{name}, calibration {kw.get('n_calibration', 0)}"] = acc["value"].to_dict()
    return out


def main() -> None:
    from neurodecode import EpochCollection
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import eegmmidb, muse

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--n-calibration", type=int, default=10)
    p.add_argument("--muse-calibration", type=int, default=20)
    args = p.parse_args()

    def named(ep, subject):
        return ep.replace(table=ep.table.assign(subject=subject))

    k = args.n_calibration
    mi = EpochCollection([named(eegmmidb(args.data, ["S001"], (4, 8, 12)), "imagined"),
                          named(eegmmidb(args.data, ["S001"], (3, 7, 11)), "executed")])
    print("EEGMMIDB S001, imagined vs executed as two subjects (accuracy of the tested one):")
    results = {"eegmmidb tangent_space": table(mi, "tangent_space", [
        {}, {"transfer": "recenter"}, {"n_calibration": k}, {"transfer": "recenter", "n_calibration": k},
        {"transfer": "rpa", "n_calibration": k}, {"transfer": "procrustes", "n_calibration": k}])}
    m = args.muse_calibration
    n170 = EpochCollection([muse(args.data, "N170", s, steps=MUSE_STEPS) for s in ("1", "2")])
    print("Muse N170, leave one subject out:")
    for recipe in ("xdawn_tangent_space", "tangent_space"):
        results[f"muse n170 {recipe}"] = table(n170, recipe, [
            {}, {"transfer": "recenter"}, {"transfer": "recenter", "n_calibration": m},
            {"transfer": "rpa", "n_calibration": m}, {"transfer": "procrustes", "n_calibration": m}])
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
