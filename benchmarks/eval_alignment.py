"""Evaluate aligners on the fMRI "digits69" data (V1–V3 voxels → the 6s and 9s seen; 90 train, 10 test trials).

Each aligner config of ``conf/aligner`` is trained on the 90 training trials (voxels z-scored with training
statistics) and predicts the 10 test images, in pixel space (784 pixels) and in an image-embedding space (PCA of the
training images, 32 components — a stand-in for a CLIP space when no pretrained weights can be downloaded). Trained
aligners are run with several seeds (mean ± sd). Scores come from the evaluation harness
(:func:`neurodecode.metrics.score_outputs`): PixCorr and SSIM in pixel space; two-way identification and top-1
retrieval among the 10 test images in both spaces (the plain-ridge reference of the data README: PixCorr 0.787,
two-way 0.933, top-1 0.60); two-way in AlexNet feature spaces when torchvision's pretrained weights are available.

Usage::

    python benchmarks/eval_alignment.py [--data ../shared/data] [--aligners ridge mlp prior] [--seeds 5]
        [--spaces pixels pca] [-p mlp:trainer.max_epochs=50 ...] [--out results/eval_alignment]
"""

from __future__ import annotations

import time

import pandas as pd

NAME = "eval_alignment"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import digits69

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--aligners", nargs="+", default=["ridge", "mlp", "prior"])
    p.add_argument("--seeds", type=int, default=5, help="seeds per trained aligner (ridge is deterministic)")
    p.add_argument("--spaces", nargs="+", default=["pixels", "pca"], choices=["pixels", "pca"])
    p.add_argument("-p", "--param", action="append", default=[], help="ALIGNER:key=value override")
    args = p.parse_args()

    from sklearn.decomposition import PCA

    from neurodecode import build
    from neurodecode.alignment import RidgeAlignment
    from neurodecode.evaluation.metrics import ImageFeatures, score_outputs

    X, images, train = digits69(args.data / "fmri_digits69" / "digit69_28x28.mat")
    flat = images.reshape(len(images), -1)
    pca = PCA(n_components=32, random_state=0).fit(flat[train])
    targets = {"pixels": flat, "pca": pca.transform(flat)}
    networks = []
    try:
        networks = [ImageFeatures("alexnet", "features.4"), ImageFeatures("alexnet", "features.11")]
    except RuntimeError as err:
        print(f"(AlexNet two-way skipped: {str(err).split(' (')[0]})")
    overrides: dict[str, list[str]] = {}
    for item in args.param:
        name, _, kv = item.partition(":")
        overrides.setdefault(name, []).append(kv)

    scores = None
    for space in args.spaces:
        Y = targets[space]
        for name in args.aligners:
            seeds = [0] if isinstance(build("aligner", name, overrides.get(name, [])), RidgeAlignment) else range(args.seeds)
            for seed in seeds:
                extra = [] if name == "ridge" else [f"seed={seed}"]
                model = build("aligner", name, overrides.get(name, []) + extra)
                t = time.perf_counter()
                P = model.fit(X[train], Y[train]).predict(X[~train])
                seconds = time.perf_counter() - t
                s = score_outputs("retrieval", P, Y[~train], k=1, pool_size=None, metric="pearson",
                                  pipeline=f"{name}/{space}", seed=seed)
                if space == "pixels":
                    pred_img = P.reshape(-1, 28, 28)
                    s = s + score_outputs("images", pred_img, images[~train], networks=networks,
                                          pipeline=f"{name}/{space}", seed=seed)
                s.table["seconds"] = seconds
                scores = s if scores is None else scores + s
    tab = scores.table
    tab = tab[tab["metric"].isin(["pixcorr", "ssim", "two_way", "image_top1", "brain_top1"])
              | tab["metric"].str.startswith("two_way[")]
    summary = tab.groupby(["pipeline", "kind", "metric"], sort=False)["value"].agg(["mean", "std", "count"])
    seconds = scores.table.groupby("pipeline", sort=False)["seconds"].mean()
    pd.set_option("display.width", 160)
    print(f"digits69: {int(train.sum())} train / {int((~train).sum())} test trials, {X.shape[1]} voxels; "
          "mean ± sd over seeds (count)")
    print(summary.round(3).to_string())
    print("fit + predict seconds per run:", seconds.round(1).to_dict())
    ref = {"two_way": 0.933, "image_top1": 0.60, "pixcorr": 0.787}
    for pipe in dict.fromkeys(tab["pipeline"]):
        if pipe.endswith("/pixels"):
            got = {m: float(summary.loc[(pipe, k, m), "mean"]) for (pl, k, m) in summary.index if pl == pipe
                   and m in ref}
            print(f"{pipe} vs plain-ridge reference: " + ", ".join(f"{m} {got[m]:.3f} ({got[m] - ref[m]:+.3f})"
                                                                    for m in ref if m in got))
    results = {f"{pl} {k} {m}": {"mean": row["mean"], "std": row["std"], "count": int(row["count"])}
               for (pl, k, m), row in summary.iterrows()}
    path = write_results(args, NAME, {"summary": results, "seconds": seconds.to_dict()})
    scores.to_json(args.out / "scores.json")
    scores.plot(args.out / "scores.png")
    print(f"wrote {path}, {args.out / 'scores.json'} and {args.out / 'scores.png'}")


if __name__ == "__main__":
    main()
