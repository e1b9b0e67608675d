"""``neurodecode reconstruct``: a trained pipeline on a subject's recordings → decoded outputs + an HTML report.

The recordings are read with the checkpoint's own data recipe (or taken from an epoch store), checked against its
input contract, encoded, aligned, and passed to the heads the checkpoint carries (images, captions, meshes) and to
retrieval in the gallery of stimuli it knows. When the recordings' stimuli are known (ids in the checkpoint's or the
recordings' stimulus table), every output is scored against them with :func:`neurodecode.metrics.score_outputs`.

Output folder::

    latents.npy            predicted latents (n_trials, embed_dim)
    images/ low_level/ linear/ captions/ meshes/   per-trial files + metadata.json (``write_trials``)
    retrieval.json         top-5 gallery stimuli and the rank of the true one, per trial
    scores.json, scores.png   evaluation (when stimuli are known)
    report.html            everything above on one self-contained page
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .epochs import EpochSet
from .pipeline import DecodingPipeline, check_contract, image_head_format, resize_images, stimulus_images

__all__ = ["latent_scores", "print_scores", "read_recordings", "reconstruct"]


def print_scores(rows: Sequence[dict[str, Any]], indent: str = "") -> None:
    """One line per score row (pipeline, kind, metric, value, chance when there is one)."""
    for row in rows:
        chance = "" if row["chance"] is None or row["chance"] != row["chance"] else f" (chance {row['chance']:.3g})"
        print(f"{indent}{row['pipeline']:>15} {row['kind']:>10} {row['metric']:<13} {row['value']:.3f}{chance}")


def latent_scores(pipe: DecodingPipeline, latents: np.ndarray, stimuli: pd.DataFrame, ids: Sequence[str], *,
                  seed: int = 0, names: tuple[str, str] = ("latents", "linear")) -> Any:
    """Scores of predicted latents against the stimuli ``ids``: retrieval among the trials, and the linear image
    reconstruction (PixCorr, SSIM) when the latent space is an image space. ``names``: the two pipeline labels."""
    from .metrics import score_outputs

    true = pipe.target.transform(stimuli, ids)
    scores = score_outputs("retrieval", latents, true, k=[1, 5] if len(ids) > 5 else [1], pool_size=None,
                           n_repeats=1, seed=seed, pipeline=names[0])
    linear = pipe.target.decode(latents)
    if linear is not None:
        scores = scores + score_outputs("images", linear, pipe.target.images(stimuli, ids), pipeline=names[1])
    return scores


def read_recordings(pipe: DecodingPipeline, recordings: Sequence[str | os.PathLike], subject: str | None = None,
                    query: str | None = None) -> EpochSet:
    """Epochs from an epoch store (.h5) or from raw files through the checkpoint's data recipe."""
    from .storage import read_epochs
    from .train import load_data

    paths = [Path(p) for p in recordings]
    if not paths:
        raise ValueError("field 'recordings': expected at least one file or folder, got none")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such recording")
    if len(paths) == 1 and paths[0].suffix == ".h5":
        epochs = read_epochs(paths[0], subject)
    else:
        epochs = load_data(pipe.config["data"], [str(p) for p in paths])
    if query:
        epochs = epochs.query(query)
        if epochs.n_epochs == 0:
            raise ValueError(f"{paths[0]}: field 'query': {query!r} selects no epoch")
    return epochs


def _truth(pipe: DecodingPipeline, epochs: EpochSet) -> tuple[pd.DataFrame | None, list[str] | None]:
    """The stimulus table that knows every trial's stimulus (the recordings' own, else the checkpoint's)."""
    ids = epochs.table["stimulus"]
    if ids.isna().any():
        return None, None
    ids = ids.astype(str).tolist()
    for table in (epochs.stimuli, pipe.stimuli):
        if table is not None and set(ids) <= set(table["stimulus"].astype(str)):
            return table.assign(stimulus=table["stimulus"].astype(str)), ids
    return None, None


def reconstruct(checkpoint: str | os.PathLike, recordings: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                *, heads: Sequence[str] | None = None, subject: str | None = None, query: str | None = None,
                n_samples: int | None = None, steps: int | None = None, strength: float | None = None,
                seed: int = 0, device: str | None = None, batch_size: int = 8, progress: bool = True,
                title: str | None = None, notices: Sequence[str] = (), overwrite: bool = False) -> dict[str, Any]:
    """Decode recordings with a trained pipeline and write outputs and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    checkpoint : a folder written by ``neurodecode train`` (``<run>/checkpoint``).
    recordings : an epoch store (.h5) or the raw files / folder the checkpoint's data recipe reads.
    heads : which outputs to make among ``images``, ``captions``, ``meshes``, ``retrieval`` (default: all the
        checkpoint has).
    subject, query : the subject of a collection store; a table query selecting trials (e.g. ``"split == 'test'"``).
    n_samples, steps, strength : image-head settings (default: the training config's ``images`` section).
    overwrite : write into a folder that already holds a reconstruction.

    Returns
    -------
    dict with ``report`` (path), ``scores`` (list of rows), ``n_trials``, ``seconds``.
    """
    from .heads.common import check_writable, write_trials
    from .metrics import Scores, score_outputs
    from .report import write_report
    from .retrieval import similarity

    t_start = time.perf_counter()
    checkpoint = Path(checkpoint)
    known = ("images", "captions", "meshes", "retrieval")
    if heads is not None:
        bad = [h for h in heads if h not in known]
        if bad:
            raise ValueError(f"field 'heads': expected names among {list(known)}, got {bad}")
    pipe = DecodingPipeline.load(checkpoint, device=device, heads=heads)
    if heads is not None:
        missing = [h for h in heads if h != "retrieval" and h not in pipe.heads]
        if missing:
            raise ValueError(f"{checkpoint}: field 'heads': this checkpoint has heads {sorted(pipe.heads)}, "
                             f"not {missing}")
    if not overwrite and (Path(out_dir) / "report.html").exists():
        raise FileExistsError(f"{out_dir}: a reconstruction is already there (report.html); choose another folder "
                              "or pass --overwrite")
    out = check_writable(out_dir)
    epochs = read_recordings(pipe, recordings, subject, query)
    epochs = check_contract(pipe.contract, epochs, str(recordings[0]), str(checkpoint))
    n = epochs.n_epochs
    trial_ids = [str(i) for i in range(n)]
    subjects = epochs.table["subject"].astype(str).tolist()
    features = pipe.features(epochs)
    latents = np.asarray(pipe.aligner.predict(features), dtype=np.float32)
    np.save(out / "latents.npy", latents)
    table, ids = _truth(pipe, epochs)
    cfg = pipe.config
    img_cfg = dict(cfg.get("images") or {})
    rows: dict[str, dict[str, Any]] = {t: {"trial": t, "subject": s, "stimulus": None if ids is None else ids[i]}
                                       for i, (t, s) in enumerate(zip(trial_ids, subjects))}
    columns: list[str] = []
    scores = None
    timings: dict[str, float] = {}
    true_images = None
    if table is not None and "pixels" in table.columns:
        true_images = stimulus_images(table, ids, pipe.target.scale)
        columns.append("stimulus image")
        for i, t in enumerate(trial_ids):
            rows[t]["stimulus image"] = true_images[i]

    def add_images(name: str, images: np.ndarray) -> None:
        nonlocal scores
        columns.append(name)
        for i, t in enumerate(trial_ids):
            rows[t][name] = images[i]
        if true_images is not None:
            s = score_outputs("images", images, resize_images(true_images, images.shape[1], images.shape[-1]),
                              pipeline=name)
            scores = s if scores is None else scores + s

    linear = pipe.target.decode(latents)
    if linear is not None:
        write_trials(out / "linear", f"linear ({pipe.target.kind} inverse)", images=linear[:, None],
                     trials=trial_ids, subjects=subjects, seed=seed)
        columns.append("linear")
        for i, t in enumerate(trial_ids):
            rows[t]["linear"] = linear[i]
    low = None
    if pipe.low_level is not None and (heads is None or "images" in heads):
        low = np.clip(pipe.low_level["ridge"].predict(features), 0, 1).reshape(n, *pipe.low_level["shape"])
        write_trials(out / "low_level", "low-level (ridge → pixels)", images=low[:, None].astype(np.float32),
                     trials=trial_ids, subjects=subjects, seed=seed)
        add_images("low-level", low.astype(np.float32))
    if "images" in pipe.heads:
        head = pipe.heads["images"]
        strength_ = float(strength if strength is not None else img_cfg.get("strength", 1.0))
        init = low if low is not None else linear if img_cfg.get("low_level") else None
        res = head.generate(latents, init_images=None if init is None or strength_ >= 1 else
                            resize_images(init, *image_head_format(head)),
                            strength=strength_ if init is not None else 1.0,
                            n_samples=int(n_samples or img_cfg.get("n_samples", 1)),
                            num_inference_steps=int(steps or img_cfg.get("steps", 25)),
                            guidance_scale=float(img_cfg.get("guidance_scale", 1.0)), seed=seed,
                            batch_size=batch_size, progress=progress, select_with=pipe.target.embed_images)
        timings["images_seconds_per_trial"] = res["seconds_per_trial"]
        write_trials(out / "images", getattr(head, "name", type(head).__name__), images=res["images"],
                     trials=trial_ids, subjects=subjects, seed=seed, model_ids=getattr(head, "config", {}),
                     timings={"seconds_per_trial": res["seconds_per_trial"]})
        add_images("generated", res["images"][:, 0])
    if "captions" in pipe.heads:
        head = pipe.heads["captions"]
        res = head.generate(latents)
        caps = res["captions"]
        timings["captions_seconds_per_trial"] = res["seconds_per_trial"]
        write_trials(out / "captions", getattr(head, "name", type(head).__name__), captions=caps, trials=trial_ids,
                     subjects=subjects, seed=seed)
        columns.append("caption")
        for i, t in enumerate(trial_ids):
            rows[t]["caption"] = caps[i]
        if table is not None and "caption" in table.columns:
            refs = table.set_index("stimulus").loc[ids, "caption"].astype(str).tolist()
            columns.append("true caption")
            for i, t in enumerate(trial_ids):
                rows[t]["true caption"] = refs[i]
            s = score_outputs("captions", caps, refs, pipeline="captions")
            freq = pd.Series(refs).value_counts(normalize=True)
            s = s + Scores(pd.DataFrame([{"kind": "captions", "metric": "exact_match", "pipeline": "captions",
                                          "value": float(np.mean([c == r for c, r in zip(caps, refs)])),
                                          "chance": float(freq.max()), "n_items": n}]))
            scores = s if scores is None else scores + s
    if "meshes" in pipe.heads:
        head = pipe.heads["meshes"]
        res = head.generate(latents, seed=seed, progress=progress)
        timings["meshes_seconds_per_trial"] = res["seconds_per_trial"]
        write_trials(out / "meshes", getattr(head, "name", type(head).__name__), meshes=res["meshes"],
                     trials=trial_ids, subjects=subjects, seed=seed, mesh_format="glb")
        columns.append("mesh views")
        for i, t in enumerate(trial_ids):
            rows[t]["mesh views"] = list(res["renders"][i])
    retrieval = []
    if (heads is None or "retrieval" in heads) and pipe.gallery is not None and pipe.stimuli is not None:
        gallery_ids = pipe.stimuli["stimulus"].astype(str).tolist()
        sims = similarity(latents, pipe.gallery, metric="cosine")
        order = np.argsort(-sims, axis=1)
        gallery_images = (stimulus_images(pipe.stimuli, gallery_ids, pipe.target.scale)
                          if "pixels" in pipe.stimuli.columns else None)
        columns.append("retrieved (top 5)")
        for i, t in enumerate(trial_ids):
            top = order[i, :5]
            rank = None
            if ids is not None and ids[i] in gallery_ids:
                rank = int(np.flatnonzero(order[i] == gallery_ids.index(ids[i]))[0])
            retrieval.append({"trial": t, "top5": [gallery_ids[j] for j in top], "true_rank": rank})
            rows[t]["retrieved (top 5)"] = ([gallery_images[j] for j in top] if gallery_images is not None
                                            else ", ".join(gallery_ids[j] for j in top))
        (out / "retrieval.json").write_text(json.dumps(retrieval, indent=1))
        ranks = np.array([r["true_rank"] for r in retrieval if r["true_rank"] is not None])
        if len(ranks):
            g = len(gallery_ids)
            s = pd.DataFrame([{"kind": "retrieval", "metric": f"gallery_top{k}", "value": float((ranks < k).mean()),
                               "chance": k / g, "n_items": len(ranks), "pipeline": f"gallery of {g}"}
                              for k in (1, 5)])
            scores = Scores(s) if scores is None else scores + Scores(s)
    if table is not None:                    # retrieval among the trials; the linear images (scored first)
        s = latent_scores(pipe, latents, table, ids, seed=seed)
        scores = s if scores is None else s + scores
    plot = None
    if scores is not None:
        scores.to_json(out / "scores.json")
        plot = out / "scores.png"
        scores.plot(plot)
    simulated = [s for s in epochs.provenance if s.get("step") == "simulate"]
    notes = list(notices)
    if simulated:
        notes.insert(0, "This subject is SIMULATED: its responses were generated from the stimuli by a known encoding "
                        f"model ({simulated[0].get('model')}). The scores say how well the pipeline inverts that "
                        "model, not how well it decodes a real brain.")
    details = {"checkpoint": checkpoint.resolve(), "recordings": ", ".join(map(str, recordings)),
               "trials": n, "input": f"{epochs.n_channels} channels × {epochs.n_times} samples at "
                                     f"{epochs.sfreq:g} Hz", "latent space": f"{pipe.target.kind} "
                                                                             f"({latents.shape[1]}-d)",
               "heads": ", ".join(sorted(pipe.heads)) or "none", **{k: f"{v:.3g}" for k, v in timings.items()},
               "seconds": f"{time.perf_counter() - t_start:.1f}"}
    report = write_report(out / "report.html", title=title or f"neurodecode reconstruction — {checkpoint.parent.name}",
                          trials=[rows[t] for t in trial_ids], columns=columns,
                          scores=None if scores is None else scores.table, plot=plot, notices=notes,
                          details=details)
    return {"report": report, "scores": [] if scores is None else json.loads(scores.to_json()), "n_trials": n,
            "seconds": time.perf_counter() - t_start}
