"""Reconstruct the 10 test digits of the fMRI "digits69" data with the unCLIP image head and score them.

Honest set-up: no pretrained image generator can be downloaded here, so a **tiny unCLIP generator is trained on the
90 training images only** (`UnCLIPImageHead.tiny`, pixel space 32 × 32, conditioned on a 32-d image embedding = PCA
of the training images, rescaled to norm √32). The brain side is the alignment stage: the `mlp` aligner predicts the
test embeddings from z-scored V1-V3 voxels, and MindEye's low-level branch (`LowLevelImages`: ridge voxels → pixels)
gives blurry images that the diffusion refines at several img2img strengths; `n_samples` draws per trial are ranked
by cosine similarity to the predicted embedding. Every variant is scored by the evaluation harness (PixCorr, SSIM,
two-way identification in pixel space, top-1 retrieval among the 10) and written as a side-by-side grid.

Usage::

    python benchmarks/eval_reconstructions.py [--epochs 400] [--steps 25] [--samples 4] [--out results/digits69]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

NAME = "eval_reconstructions"


def grid(rows: dict[str, np.ndarray], path: Path, scale: int = 3) -> None:
    """One column per variant (stimulus first), one row per trial."""
    from PIL import Image, ImageDraw

    names = list(rows)
    n, h, w = rows[names[0]].shape[:3]
    pad, head = 2, 14
    canvas = Image.new("L", ((w * scale + pad) * len(names) + pad, (h * scale + pad) * n + pad + head), 255)
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(names):
        draw.text((pad + j * (w * scale + pad), 1), name[: w * scale // 6], fill=0)
        for i in range(n):
            img = Image.fromarray((np.clip(rows[name][i], 0, 1) * 255).astype(np.uint8)).resize(
                (w * scale, h * scale), Image.NEAREST)
            canvas.paste(img, (pad + j * (w * scale + pad), head + pad + i * (h * scale + pad)))
    canvas.save(path)


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results
    from neurodecode.loaders.public import digits69

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=400, help="training epochs of the tiny generator (3 steps each)")
    p.add_argument("--steps", type=int, default=25, help="DDIM steps")
    p.add_argument("--samples", type=int, default=4, help="samples per trial (best by embedding similarity)")
    p.add_argument("--strengths", type=float, nargs="+", default=[0.2, 0.1, 0.3])
    p.add_argument("--guidance", type=float, default=3.0, help="classifier-free guidance scale")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()

    from sklearn.decomposition import PCA

    from neurodecode import build
    from neurodecode.heads.writing import write_trials
    from neurodecode.heads.images import LowLevelImages, UnCLIPImageHead
    from neurodecode.evaluation.metrics import score_outputs

    X, images, train = digits69(args.data / "fmri_digits69" / "digit69_28x28.mat")
    test = ~train
    img32 = np.pad(images, ((0, 0), (2, 2), (2, 2)))
    flat = images.reshape(len(images), -1)
    pca = PCA(32, random_state=0).fit(flat[train])

    def embed(imgs: np.ndarray) -> np.ndarray:
        e = pca.transform(imgs.reshape(len(imgs), -1))
        return e / np.linalg.norm(e, axis=1, keepdims=True) * np.sqrt(32)

    E = embed(images)
    head = UnCLIPImageHead.tiny(embed_dim=32, image_size=32, channels=1, block_out_channels=(16, 32), seed=0,
                                device=args.device)
    t0 = time.perf_counter()
    head.fit(E[train], img32[train], trainer={"max_epochs": args.epochs, "batch_size": 30, "lr": 3e-3,
                                              "warmup_steps": 50})
    fit_s = time.perf_counter() - t0
    pred_E = build("aligner", "mlp").fit(X[train], E[train]).predict(X[test])
    blurry = LowLevelImages(head.image_shape).fit(X[train], img32[train]).predict(X[test])
    select = lambda ims: embed(ims[:, 2:30, 2:30, 0])  # noqa: E731 - the embedding of generated samples
    variants: dict[str, dict] = {}
    kw = {"num_inference_steps": args.steps, "n_samples": args.samples, "select_with": select, "seed": 0,
          "guidance_scale": args.guidance}
    variants["generated from true embeddings (ceiling)"] = head.generate(E[test], **kw)
    variants["generated from predicted embeddings"] = head.generate(pred_E, **kw)
    for s in args.strengths:
        variants[f"low-level + img2img, strength {s}"] = head.generate(pred_E, init_images=blurry, strength=s, **kw)
    crops = {"stimulus": images[test], "blurry (ridge → pixels)": blurry[:, 2:30, 2:30, 0]}
    crops.update({k: v.images[:, 0, 2:30, 2:30, 0] for k, v in variants.items()})
    scores = None
    for name, imgs in list(crops.items())[1:]:
        s = (score_outputs("images", imgs, images[test], pipeline=name)
             + score_outputs("retrieval", imgs.reshape(len(imgs), -1), flat[test], k=1, pool_size=None,
                             metric="pearson", pipeline=name))
        scores = s if scores is None else scores + s
    args.out.mkdir(parents=True, exist_ok=True)
    grid(crops, args.out / "grid.png")
    scores.to_json(args.out / "scores.json")
    tab = scores.table[scores.table["metric"].isin(["pixcorr", "ssim", "two_way", "image_top1"])]
    print(f"tiny generator ({sum(p.numel() for p in head.unet.parameters()) / 1e6:.2f} M parameters) trained on the "
          f"90 training images for {args.epochs} epochs in {fit_s:.0f} s")
    print(tab.pivot(index="pipeline", columns="metric", values="value").loc[list(crops)[1:]].round(3).to_string())
    for name, v in variants.items():
        print(f"{name}: {v.seconds_per_trial:.2f} s per trial ({args.samples} samples, {args.steps} steps, "
              f"guidance {args.guidance})")
    best = variants[f"low-level + img2img, strength {args.strengths[0]}"]
    write_trials(args.out / "images", "tiny-unclip (trained on digits69 training images)", images=best.images,
                 trials=np.flatnonzero(test).tolist(), seed=0, model_ids={"image": head.config},
                 timings={"seconds_per_trial": best.seconds_per_trial},
                 extra={"strength": args.strengths[0], "note": "tiny generator trained on the 90 training images"})
    path = write_results(args, NAME, {"scores": scores.table.to_dict(orient="records"), "fit_seconds": fit_s})
    print(f"wrote {path}, {args.out / 'grid.png'}, {args.out / 'scores.json'} and {args.out / 'images'}")


if __name__ == "__main__":
    main()
