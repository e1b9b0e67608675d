"""Encoder-guided generation (BrainDiVE-style) on the built-in simulated subject.

The demo's simulated subject (scikit-learn digits through pRF voxels + noise; 600 training trials): a ridge encoding
model (pixels at 16 × 16 → each voxel) is fitted on the training trials, and the 20 voxels it predicts best (5-fold
cross-validated r) form the group to drive. A tiny unCLIP generator is trained on the training images (40 epochs,
as in the demo) and samples images for the 50 held-out trials' predicted latents (ridge: voxels → 32 PCA components),
without and with the gradient of the group's predicted activation added to each DDIM step. Reported: the group's
predicted activation in units of its standard deviation over the training images (0 = their mean) for the training
images, their top decile, the unguided samples and the guided ones, and each set's PixCorr with the true image
(what the guidance costs in fidelity). About 3 minutes on 2 CPU cores.

    python benchmarks/eval_brain_guidance.py [--scales 0.002 0.005 0.01 0.02] [--epochs 40]
"""

from __future__ import annotations

import time

import numpy as np

NAME = "eval_brain_guidance"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--scales", type=float, nargs="+", default=[0.002, 0.005, 0.01, 0.02])
    p.add_argument("--epochs", type=int, default=40)
    args = p.parse_args()
    import torch

    from neurodecode.alignment.aligners import RidgeAlignment, encoding_scores
    from neurodecode.alignment.encoding_models import RidgeEncodingModel, pixel_features
    from neurodecode.alignment.targets import TargetSpace
    from neurodecode.core.stimuli import resize_images, stimulus_images
    from neurodecode.evaluation.metrics import pixcorr
    from neurodecode.heads.images import UnCLIPImageHead
    from neurodecode.loaders.simulate import simulated_subject

    t0 = time.perf_counter()
    ep = simulated_subject(n_train=600, n_test=50, n_voxels=400, image_size=16, seed=args.seed)
    train = (ep.table["split"] == "train").to_numpy()
    ids = ep.table["stimulus"].astype(str).tolist()
    images = stimulus_images(ep.stimuli, ids)
    pix = resize_images(images, 16, 1).reshape(len(ids), -1).astype(np.float64)
    V = ep.data[:, :, 0].astype(np.float64)
    scores = encoding_scores(pix[train], V[train], cv=5)
    group = np.argsort(scores)[::-1][:20]
    encoder = RidgeEncodingModel().fit(pix[train], V[train])
    drive = encoder.activation(group, pixel_features(16), standardize=pix[train])
    target = TargetSpace("pca", n_components=32)
    target.fit(ep.stimuli, list(dict.fromkeys(np.asarray(ids)[train])))
    Y = target.transform(ep.stimuli, ids)
    latents = RidgeAlignment().fit(V[train], Y[train]).predict(V[~train]).astype(np.float32)
    head = UnCLIPImageHead.tiny(embed_dim=32, image_size=16, block_out_channels=(32, 64), prompt_tokens=1,
                                seed=args.seed)
    head.fit(Y[train], images[train], trainer={"max_epochs": args.epochs, "batch_size": 32, "lr": 0.002},
             seed=args.seed)
    print(f"simulated subject: 600 training trials, group = the 20 best-encoded voxels (cv r {scores[group].mean():.3f});"
          f" head trained in {time.perf_counter() - t0:.0f} s")

    def activation(imgs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return drive(torch.as_tensor(imgs, dtype=torch.float32).permute(0, 3, 1, 2)).numpy()

    train_act = activation(images[train])
    truth = images[~train]
    print(f"  training images                 activation {train_act.mean():+.2f}  (top decile "
          f"{np.sort(train_act)[-len(train_act) // 10:].mean():+.2f})")
    results = {"training images activation": float(train_act.mean())}
    for scale in [0.0, *args.scales]:
        out = head.generate(latents, num_inference_steps=20, brain_guidance=drive, brain_scale=scale).images[:, 0]
        name = "unguided samples" if scale == 0 else f"guided samples, scale {scale:g}"
        print(f"  {name:31s} activation {activation(out).mean():+.2f}  PixCorr with the true image "
              f"{pixcorr(out, truth):.3f}")
        results[name] = {"activation": float(activation(out).mean()), "pixcorr": float(pixcorr(out, truth))}
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
