"""GIT captions from brain latents (MindEye2's caption path) beside ClipCap and the plain nearest-caption reference.

The demo's simulated subject (scikit-learn digits through pRF voxels + noise; captions "a handwritten seven"):
ridge maps the voxels onto 32 PCA components of the images (the demo's aligner). Three caption paths read the 200
held-out trials' predicted latents:

* **GIT** (tiny, from a config): trained on the training images and captions, then a ridge map from the training
  trials' target latents onto the visual tokens its image encoder gives their images; captions decoded from the
  mapped tokens. Also reported: GIT through the map from the held-out stimuli's true latents (what the map loses)
  and GIT on the true held-out images (its ceiling here).
* **ClipCap** (tiny prefix head, as in the demo): a mapping network into a small GPT-2, trained on the training
  latents and captions.
* **nearest caption** (the plain reference): the caption of the training stimulus whose latent is most similar
  (cosine) to the predicted one.

Reported: exact-match rate (chance: the commonest caption's frequency), BLEU-4 and ROUGE-L, and the paired
difference of GIT's per-trial exact matches with the nearest caption's (bootstrap CI, sign-flip p). About 2 min.

    python benchmarks/eval_git_caption.py [--epochs 80]
"""

from __future__ import annotations

import time

import numpy as np

NAME = "eval_git_caption"


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--epochs", type=int, default=80)
    args = p.parse_args()
    from neurodecode.alignment.aligners import RidgeAlignment
    from neurodecode.alignment.targets import TargetSpace
    from neurodecode.core.stimuli import stimulus_images
    from neurodecode.core.scores import paired_difference
    from neurodecode.evaluation.scoring import caption_scores_exact
    from neurodecode.heads.captions import GitCaptionHead, PrefixCaptionHead
    from neurodecode.loaders.simulate import simulated_subject

    t0 = time.perf_counter()
    ep = simulated_subject(n_train=600, n_test=200, n_voxels=400, image_size=16, seed=args.seed)
    train = (ep.table["split"] == "train").to_numpy()
    ids = ep.table["stimulus"].astype(str).tolist()
    caps = ep.stimuli.set_index("stimulus").loc[ids, "caption"].astype(str).to_numpy()
    images = stimulus_images(ep.stimuli, ids)
    V = ep.data[:, :, 0].astype(np.float64)
    target = TargetSpace("pca", n_components=32)
    target.fit(ep.stimuli, list(dict.fromkeys(np.asarray(ids)[train])))
    Y = target.transform(ep.stimuli, ids).astype(np.float32)
    latents = RidgeAlignment().fit(V[train], Y[train]).predict(V[~train]).astype(np.float32)
    fit = {"max_epochs": args.epochs, "batch_size": 32, "lr": 0.002}
    bank = sorted(set(caps))

    git = GitCaptionHead.tiny(bank, embed_dim=32).fit(Y[train], list(caps[train]), trainer=fit, images=images[train],
                                                        seed=args.seed)
    clipcap = PrefixCaptionHead.tiny(bank, embed_dim=32).fit(Y[train], list(caps[train]), trainer=fit,
                                                              seed=args.seed)
    unit = Y[train] / np.linalg.norm(Y[train], axis=1, keepdims=True)
    near = caps[train][np.argmax(latents @ unit.T, axis=1)]
    git.vision.tokens_given = False
    ceiling = git.captioner.generate(pixel_values=git.pixel_values(images[~train]), max_new_tokens=8, do_sample=False)
    ceiling = [git.tokenizer.decode(r[1:], skip_special_tokens=True).strip() for r in ceiling.tolist()]
    preds = {"GIT (ridge map → visual tokens)": git.generate(latents).captions,
             "ClipCap prefix (tiny GPT-2)": clipcap.generate(latents).captions,
             "nearest caption (plain reference)": list(near),
             "GIT through the map from the true latents": git.generate(Y[~train]).captions,
             "GIT on the true images (ceiling)": ceiling}
    refs = list(caps[~train])
    print(f"simulated subject: 600 training / {len(refs)} held-out trials, {len(bank)} captions; "
          f"{time.perf_counter() - t0:.0f} s")
    print(f"{'path':42s} {'exact':>6s} {'BLEU-4':>7s} {'ROUGE-L':>8s}")
    results: dict = {}
    for name, pred in preds.items():
        s = caption_scores_exact(pred, refs).table.set_index("metric")["value"]
        print(f"{name:42s} {s['exact_match']:6.3f} {s['bleu4']:7.3f} {s['rouge_l']:8.3f}")
        results[name] = {m: float(s[m]) for m in ("exact_match", "bleu4", "rouge_l")}
    chance = max(refs.count(c) for c in set(refs)) / len(refs)
    hits = {k: np.array([a == b for a, b in zip(v, refs)], float) for k, v in preds.items()}
    d = paired_difference(hits["GIT (ridge map → visual tokens)"], hits["nearest caption (plain reference)"], seed=0)
    print(f"chance (commonest caption) {chance:.3f}; GIT − nearest caption exact match {d['difference']:+.3f} "
          f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], p = {d['p_value']:.3f}")
    results["chance"], results["git_minus_nearest"] = chance, dict(d)
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
