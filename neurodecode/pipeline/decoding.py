"""``neurodecode reconstruct``: a trained pipeline on a subject's recordings → decoded outputs + an HTML report.

In steps, each a function of its own:

1. :func:`read_recordings` — the checkpoint's own data recipe (or an epoch store), checked against its input
   contract (:func:`~neurodecode.pipeline.checkpoint.check_contract`);
2. :func:`decode` — features and latents through :meth:`DecodingPipeline.infer`, the linear and low-level images,
   every head through the head protocol, retrieval in the gallery of stimuli the checkpoint knows;
3. :func:`score` — every output against the truth when the trials' stimuli are known
   (:mod:`neurodecode.evaluation.scoring`);
4. :func:`write_outputs` and :func:`report` — per-trial files and the self-contained ``report.html``.

Output folder::

    latents.npy            predicted latents (n_trials, embed_dim)
    images/ low_level/ linear/ captions/ meshes/   per-trial files + metadata.json
    retrieval.json         top-5 gallery stimuli and the rank of the true one, per trial (labels objective: classes)
    confusion.json         labels objective: the confusion matrix (rows: true class, columns: predicted class)
    confusion.png, roc.png labels objective: the confusion matrix drawn; the ROC curve (two classes)
    scores.json, scores.png   evaluation (when stimuli are known): one panel per output kind, 95% intervals
    trial_scores.csv       per-trial two-way / top-1 / PixCorr of the pipeline and of its plain baseline
    baseline.json          the pipeline beside its baseline, paired over the trials (difference, CI, p-value)
    report.html            everything above on one self-contained page

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.epochs import EpochSet
from neurodecode.core.persistence import dumps
from neurodecode.core.stimuli import resize_images, stimulus_images
from neurodecode.core.validation import fail
from neurodecode.evaluation.metrics import Scores
from neurodecode.heads.base import HeadOutput, ImageOutput, prepare_latents
from neurodecode.pipeline.checkpoint import DecodingPipeline, check_contract

__all__ = ["OUTPUTS", "Decoded", "decode", "read_recordings", "reconstruct", "report", "score", "write_outputs"]

#: what ``reconstruct`` can make
OUTPUTS = ("images", "captions", "meshes", "retrieval")


@dataclasses.dataclass
class Decoded:
    """Everything decoded from one set of trials.

    Attributes
    ----------
    trials, subjects : list of str
        One per trial.
    ids : list of str or None
        The trials' true stimulus ids, when every one is known in ``truth``.
    truth : DataFrame or None
        The stimulus table that knows them (the recordings' own, else the checkpoint's).
    latents : ndarray (n_trials, embed_dim)
    images : dict of str to ImageOutput
        ``"linear"`` (image-space objectives), ``"low-level"`` (MindEye's branch) and ``"images"`` (the head).
    outputs : dict of str to HeadOutput
        ``"captions"``, ``"meshes"`` from their heads.
    retrieval : list of dict
        Per trial: top-5 gallery stimuli and the true stimulus's rank.
    gallery_scores : Scores or None
    baseline_latents : ndarray (n_trials, embed_dim) or None
        The plain baseline's latents (voxel features → ridge), when the checkpoint holds one.
    comparison : DataFrame or None
        The pipeline beside its baseline, paired over the trials (:func:`score` fills it).
    trial_scores : DataFrame or None
        Per-trial scores of the pipeline (``two_way``, ``top1``, ``pixcorr``) and of the baseline
        (``baseline two_way`` …), shown in the report's trial table.
    """

    trials: list[str]
    subjects: list[str]
    ids: list[str] | None
    truth: pd.DataFrame | None
    latents: np.ndarray
    images: dict[str, ImageOutput] = dataclasses.field(default_factory=dict)
    outputs: dict[str, HeadOutput] = dataclasses.field(default_factory=dict)
    retrieval: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    gallery_scores: Scores | None = None
    baseline_latents: np.ndarray | None = None
    comparison: pd.DataFrame | None = None
    trial_scores: pd.DataFrame | None = None
    scale: float | None = None
    #: labels objective: the confusion matrix of the trials whose class is known (:func:`~neurodecode.evaluation.
    #: scoring.confusion`)
    confusion: dict[str, Any] | None = None

    def true_images(self) -> np.ndarray | None:
        """The trials' true stimulus images (n_trials, H, W, 1) in [0, 1], built once from the stimulus table
        (None when it has no pixels) — scoring, the comparison and the report all read these."""
        if self.truth is None or "pixels" not in self.truth.columns:
            return None
        if getattr(self, "_true_images", None) is None:
            self._true_images = stimulus_images(self.truth, self.ids, self.scale)
        return self._true_images


# -- 1. read ---------------------------------------------------------------------------------------------------------

def read_recordings(pipe: DecodingPipeline, recordings: Sequence[str | os.PathLike], subject: str | None = None,
                    query: str | None = None, checkpoint: str = "the checkpoint") -> EpochSet:
    """Epochs from an epoch store (.h5) or from raw files through the checkpoint's data recipe, checked against
    the checkpoint's input contract (channels reordered by name; every mismatch listed in one error)."""
    from neurodecode.core.storage import load
    from neurodecode.pipeline.fitting import load_data

    paths = [Path(p) for p in recordings]
    if not paths:
        fail("recordings", "at least one file or folder", "none")
    for p in paths:
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such recording")
    if len(paths) == 1 and paths[0].suffix == ".h5":
        epochs = load(paths[0], subject)
        if not isinstance(epochs, EpochSet):
            raise ValueError(f"{paths[0]}: field 'subject': expected one of {list(epochs)} (this file is a "
                             "collection); choose one with --subject")
    else:
        epochs = load_data(pipe.config["data"], [str(p) for p in paths])
    if query:
        epochs = epochs.query(query)
        if epochs.n_epochs == 0:
            raise ValueError(f"{paths[0]}: field 'query': {query!r} selects no epoch")
    epochs = check_contract(pipe.contract, epochs, str(paths[0]), checkpoint)
    if not query:
        _refuse_training_trials(pipe, epochs, paths[0])
    return epochs


def _refuse_training_trials(pipe: DecodingPipeline, epochs: EpochSet, path: Path) -> None:
    """Recordings whose table marks trials outside the split the checkpoint held out (``split.column`` /
    ``split.test`` of its training config) may hold the very trials it was fitted on: scoring them would report a
    training score as a held-out one. Without ``--query`` that is refused; a query says which trials are meant."""
    split = pipe.config.get("split") or {}
    column, test = split.get("column"), split.get("test")
    if not column or test is None or column not in epochs.table.columns:
        return
    values = [str(v) for v in (test if isinstance(test, (list, tuple)) else [test])]
    outside = int((~epochs.table[column].astype(str).isin(values)).sum())
    if outside:
        held = values[0] if len(values) == 1 else values
        raise ValueError(f"{path}: field '{column}': {outside} of {epochs.n_epochs} trials are not in the held-out "
                         f"split {column} == {held!r} the checkpoint was trained without — it may have been fitted on "
                         f"them, and their scores would not be held-out scores. Decode the held-out trials with "
                         f"--query \"{column} == '{values[0]}'\", or say which trials you mean with another --query")


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


# -- 2. decode -------------------------------------------------------------------------------------------------------

def image_options(pipe: DecodingPipeline, n_samples: int | None = None, steps: int | None = None,
                  strength: float | None = None, brain_scale: float | None = None) -> dict[str, Any]:
    """The image head's settings: the training config's ``images`` section, with command-line values first."""
    cfg = dict(pipe.config.get("images") or {})
    guide = dict(cfg.get("brain_guidance") or {})
    values = {"n_samples": int(n_samples or cfg.get("n_samples", 1)),
              "num_inference_steps": int(steps or cfg.get("steps", 25)),
              "guidance_scale": float(cfg.get("guidance_scale", 1.0)),
              "strength": float(strength if strength is not None else cfg.get("strength", 1.0)),
              "low_level": bool(cfg.get("low_level", False)),
              "brain_scale": float(brain_scale if brain_scale is not None else guide.get("scale", 0.0) or 0.0)}
    if values["n_samples"] < 1 or values["num_inference_steps"] < 1:
        fail("n_samples/steps", "integers >= 1", f"{values['n_samples']} / {values['num_inference_steps']}")
    if not 0 < values["strength"] <= 1:
        fail("strength", "a value in (0, 1]", values["strength"])
    return values


def mesh_options(pipe: DecodingPipeline) -> dict[str, Any]:
    """The 3D head's settings from the training config's ``meshes`` section: the views to render, and those of the
    settings the head uses (:attr:`~neurodecode.heads.base.HeadBase.options`; a deterministic head has no sampler
    steps)."""
    cfg = dict(pipe.config.get("meshes") or {})
    names = {"steps": "num_inference_steps", "grid_size": "grid_size", "n_views": "n_views",
             "render_size": "render_size", "guidance_scale": "guidance_scale"}
    cfg.pop("fit", None)                       # how the head was trained, not how it decodes
    unknown = sorted(set(cfg) - set(names))
    if unknown:
        fail("meshes", f"settings among {sorted(names)}", f"unknown {unknown}", "the checkpoint's config")
    head = pipe.heads.get("meshes")
    takes = set(head.options if head is not None else ()) | {"n_views", "render_size"}
    return {names[k]: v for k, v in cfg.items() if names[k] in takes}


def _generate_images(pipe: DecodingPipeline, d: Decoded, options: Mapping[str, Any], seed: int, batch_size: int,
                     progress: bool) -> ImageOutput:
    """The image head from the latents, img2img from the low-level (or linear) images when configured."""
    head = pipe.heads["images"]
    init = d.images.get("low-level")
    if init is None and options["low_level"]:
        init = d.images.get("linear")
    kw: dict[str, Any] = {}
    if head.img2img:
        kw["strength"] = 1.0
        if init is not None and options["strength"] < 1:
            H, W, C = head.image_shape
            kw = {"init_images": resize_images(init.images[:, 0], H, C), "strength": options["strength"]}
    latents = prepare_latents(head, d.latents, pipe.target.raw_norm_,      # the scale the head's weights expect
                              pipe.target.token_shape_)
    if pipe.guidance is not None and options.get("brain_scale") and head.brain_guided:
        kw.update(brain_guidance=pipe.brain_guidance(), brain_scale=float(options["brain_scale"]))
    return head.generate(latents, seed=seed, trial_ids=d.trials, n_samples=options["n_samples"],
                         num_inference_steps=options["num_inference_steps"],
                         guidance_scale=options["guidance_scale"], batch_size=batch_size, progress=progress,
                         select_with=pipe.target.embed_images, **kw)


def decode(pipe: DecodingPipeline, epochs: EpochSet, *, outputs: Sequence[str] = OUTPUTS,
           options: Mapping[str, Any] | None = None, seed: int = 0, batch_size: int = 8,
           progress: bool = True) -> Decoded:
    """Latents, linear / low-level images, every head's output and gallery retrieval for epochs that meet the
    checkpoint's input contract."""
    from neurodecode.evaluation.scoring import gallery_retrieval

    options = dict(options or image_options(pipe))
    column = pipe.target.column or "label"
    if pipe.target.kind == "labels" and column in epochs.table and epochs.table[column].notna().all():
        epochs = pipe.target.class_view(epochs)           # each trial's class is the "stimulus" it is scored on
    inf = pipe.infer(epochs)
    truth, ids = _truth(pipe, epochs)
    d = Decoded([str(i) for i in range(epochs.n_epochs)], epochs.table["subject"].astype(str).tolist(), ids, truth,
                inf.latents, baseline_latents=pipe.baseline_latents(epochs), scale=pipe.target.scale)
    linear = pipe.target.decode(inf.latents)
    if linear is not None:
        d.images["linear"] = ImageOutput(f"linear ({pipe.target.kind} inverse)", d.trials, seed, 0.0, {},
                                         images=linear[:, None], label="linear")
    low = pipe.low_level_images(inf.features) if "images" in outputs else None
    if low is not None:
        d.images["low-level"] = ImageOutput("low-level (ridge → pixels)", d.trials, seed, 0.0, {},
                                            images=low[:, None], label="low-level")
    if "images" in outputs and "images" in pipe.heads:
        d.images["images"] = _generate_images(pipe, d, options, seed, batch_size, progress)
    as_read = lambda k: prepare_latents(pipe.heads[k], d.latents, pipe.target.raw_norm_,  # noqa: E731
                                        pipe.target.token_shape_)
    if "captions" in outputs and "captions" in pipe.heads:
        d.outputs["captions"] = pipe.heads["captions"].generate(as_read("captions"), seed=seed, trial_ids=d.trials)
    if "meshes" in outputs and "meshes" in pipe.heads:
        mesh_kw = mesh_options(pipe)
        if "progress" in pipe.heads["meshes"].options:
            mesh_kw["progress"] = progress
        d.outputs["meshes"] = pipe.heads["meshes"].generate(as_read("meshes"), seed=seed, trial_ids=d.trials,
                                                            **mesh_kw)
    if "retrieval" in outputs and pipe.gallery is None:
        from neurodecode.core.logs import logger

        logger.warning("the checkpoint has no retrieval gallery (no stimulus table at training time): gallery "
                       "retrieval is skipped")
    elif "retrieval" in outputs:
        d.retrieval, d.gallery_scores = gallery_retrieval(pipe.target, d.latents, ids, d.trials)
    return d


# -- 3. score --------------------------------------------------------------------------------------------------------

def score(pipe: DecodingPipeline, d: Decoded, seed: int = 0) -> Scores | None:
    """Every output against the truth (None when the trials' stimuli are unknown): retrieval among the trials and
    the linear images first, then the low-level and generated images, captions, gallery retrieval."""
    from neurodecode.evaluation.scoring import caption_scores_exact, image_scores, latent_scores

    if d.truth is None:
        return d.gallery_scores
    if pipe.target.kind == "labels":
        from neurodecode.evaluation.scoring import confusion

        d.confusion = confusion(pipe.target, d.latents, d.ids)
    mine, base = _trial_tables(pipe, d)
    parts = [latent_scores(pipe.target, d.latents, d.truth, d.ids, seed=seed, per_trial=mine)]
    true_images = d.true_images()
    if true_images is not None:
        for name in ("low-level", "images"):
            if name in d.images:
                out = d.images[name]
                parts.append(image_scores(out.label, out.images[:, 0], true_images))
    if "captions" in d.outputs and "caption" in d.truth.columns:
        refs = d.truth.set_index("stimulus").loc[d.ids, "caption"].astype(str).tolist()
        parts.append(caption_scores_exact(d.outputs["captions"].captions, refs))
    if d.gallery_scores is not None:
        parts.append(d.gallery_scores)
    if d.baseline_latents is not None:
        parts.insert(1, latent_scores(pipe.target, d.baseline_latents, d.truth, d.ids, seed=seed,
                                      names=(pipe.baseline.name, pipe.baseline.name), per_trial=base))
    if mine is not None:
        _compare(pipe, d, seed, mine, base)
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def _trial_tables(pipe: DecodingPipeline, d: Decoded) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """Per-trial latent scores of the pipeline and of its baseline (None without one; both None for one trial)."""
    from neurodecode.evaluation.scoring import latent_trial_scores

    if len(d.trials) < 2:
        return None, None
    mine = latent_trial_scores(pipe.target, d.latents, d.truth, d.ids)
    base = (None if d.baseline_latents is None
            else latent_trial_scores(pipe.target, d.baseline_latents, d.truth, d.ids))
    return mine, base


def _compare(pipe: DecodingPipeline, d: Decoded, seed: int, mine: pd.DataFrame, base: pd.DataFrame | None) -> None:
    """The per-trial scores of the pipeline (and of its baseline, and of the generated images) and their paired
    comparisons, into ``d``."""
    from neurodecode.core.scores import compare_scores

    tables, columns = [], [mine]
    if base is not None:
        tables.append(compare_scores(mine, base, names=("pipeline", pipe.baseline.name), seed=seed))
        columns.append(base.add_prefix("baseline "))
    generated = _generated_vs_reference(d, seed, pipe.target.scale)
    if generated is not None:
        tables.append(generated[0])
        columns.append(generated[1])
    d.trial_scores = pd.concat(columns, axis=1)
    d.comparison = pd.concat(tables, ignore_index=True) if tables else None


def _generated_vs_reference(d: Decoded, seed: int, scale: float | None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The image head's images beside the plain images it starts from (the linear reconstruction, else MindEye's
    low-level one), per trial at the generated resolution: (comparison, per-trial columns) or None."""
    from neurodecode.core.scores import compare_scores
    from neurodecode.evaluation.metrics import image_trial_scores

    reference = next((k for k in ("linear", "low-level") if k in d.images), None)
    if "images" not in d.images or reference is None or "pixels" not in d.truth.columns:
        return None
    gen = d.images["images"].images[:, 0]
    size, channels = gen.shape[1], gen.shape[-1]
    truth = resize_images(d.true_images(), size, channels)
    ref = resize_images(d.images[reference].images[:, 0], size, channels)
    a, b = image_trial_scores(gen, truth), image_trial_scores(ref, truth)
    table = compare_scores(a, b, names=("generated", f"{reference} reconstruction"), seed=seed)
    return table, pd.concat([a.add_prefix("generated "), b.add_prefix(f"{reference} ")], axis=1)


# -- 4. write and report -----------------------------------------------------------------------------------------------

def write_outputs(d: Decoded, out: Path, scores: Scores | None) -> list[Path]:
    """``latents.npy``, each output's folder, ``retrieval.json``, ``scores.json`` / ``scores.png`` (and for class
    decoding ``confusion.png``, with two classes ``roc.png``); returns the figures."""
    np.save(out / "latents.npy", d.latents)
    folders = {"linear": "linear", "low-level": "low_level", "images": "images"}
    for name, output in d.images.items():
        output.write(out / folders[name], d.subjects)
    for kind, output in d.outputs.items():
        output.write(out / kind, d.subjects)
    if d.retrieval:
        (out / "retrieval.json").write_text(dumps(d.retrieval, indent=1))
    if d.trial_scores is not None:
        d.trial_scores.assign(trial=d.trials).to_csv(out / "trial_scores.csv", index=False)
    if d.comparison is not None:
        (out / "baseline.json").write_text(dumps(d.comparison.to_dict(orient="records"), indent=1))
    if d.confusion is not None:
        (out / "confusion.json").write_text(dumps(d.confusion, indent=1))
    if scores is None:
        return []
    scores.to_json(out / "scores.json")
    scores.plot(out / "scores.png")
    return [out / "scores.png", *_class_figures(d, out)]


def _class_figures(d: Decoded, out: Path) -> list[Path]:
    """The confusion matrix and, with two classes, the ROC curve of a class-decoding run's trials."""
    if d.confusion is None or d.ids is None:
        return []
    from neurodecode.evaluation.plots import plot_confusion_matrix, plot_roc_curve

    classes = [str(c) for c in d.confusion["classes"]]
    counts = np.asarray(d.confusion["matrix"])
    true = np.repeat(np.repeat(classes, counts.shape[1]), counts.ravel())       # the counts back as trials
    pred = np.repeat(np.tile(classes, counts.shape[0]), counts.ravel())
    plot_confusion_matrix(true, pred, classes, path=out / "confusion.png")
    figures = [out / "confusion.png"]
    labels = np.asarray(d.ids).astype(str)
    if len(classes) == 2 and len(set(labels)) == 2:
        plot_roc_curve(labels, d.latents[:, 1] - d.latents[:, 0], positive=classes[1], name="decoded",
                       path=out / "roc.png")
        figures.append(out / "roc.png")
    return figures


def _trial_rows(pipe: DecodingPipeline, d: Decoded) -> tuple[list[dict[str, Any]], list[str]]:
    """One report row per trial and the columns to show, in order."""
    rows = [{"trial": t, "subject": s, "stimulus": None if d.ids is None else d.ids[i]}
            for i, (t, s) in enumerate(zip(d.trials, d.subjects))]
    cells: dict[str, list] = {}
    if d.truth is not None and "pixels" in d.truth.columns:
        cells["stimulus image"] = list(d.true_images())
    for name in ("linear", "low-level", "images"):
        if name in d.images:
            cells.update(d.images[name].report_columns())
    for output in d.outputs.values():
        cells.update(output.report_columns())
    if "captions" in d.outputs and d.truth is not None and "caption" in d.truth.columns:
        cells["true caption"] = d.truth.set_index("stimulus").loc[d.ids, "caption"].astype(str).tolist()
    if d.retrieval:
        gallery_ids = pipe.stimuli["stimulus"].astype(str).tolist()
        gallery = (stimulus_images(pipe.stimuli, gallery_ids, pipe.target.scale)
                   if "pixels" in pipe.stimuli.columns else None)
        where = {g: i for i, g in enumerate(gallery_ids)}
        cells["retrieved (top 5)"] = [[gallery[where[g]] for g in r["top5"]] if gallery is not None
                                      else ", ".join(r["top5"]) for r in d.retrieval]
    if d.trial_scores is not None:
        for column in d.trial_scores.columns:
            cells[f"score: {column}"] = d.trial_scores[column].tolist()
    for name, values in cells.items():
        for row, value in zip(rows, values):
            row[name] = value
    return rows, list(cells)


def report(pipe: DecodingPipeline, d: Decoded, epochs: EpochSet, out: Path, scores: Scores | None,
           plot: Sequence[Path] | Path | None, *, title: str, notices: Sequence[str] = (), details: Mapping[str, Any] = ()) -> Path:
    """Write ``report.html``: a notice when the subject is simulated, the details, scores and one row per trial."""
    from neurodecode.evaluation.report import write_report

    simulated = [s for s in epochs.provenance if s.get("step") == "simulate"]
    notes = list(notices)
    if simulated:
        notes.insert(0, "This subject is SIMULATED: its responses were generated from the stimuli by a known encoding "
                        f"model ({simulated[0].get('model')}). The scores say how well the pipeline inverts that "
                        "model, not how well it decodes a real brain.")
    if pipe.baseline is None and pipe.config.get("baseline", True) and d.truth is not None:
        notes.append("The configured pipeline is the plain baseline (voxel features → ridge): its latent scores are "
                     "the reference; generated images are compared with the plain reconstruction they start from.")
    rows, columns = _trial_rows(pipe, d)
    return write_report(out / "report.html", title=title, trials=rows, columns=columns,
                        scores=None if scores is None else scores.table, plot=plot, notices=notes,
                        details=dict(details), comparison=d.comparison)


def _details(checkpoint: Path, recordings: Sequence[Any], epochs: EpochSet, pipe: DecodingPipeline, d: Decoded,
             options: Mapping[str, Any], t_start: float) -> dict[str, Any]:
    timings = {f"{k}_seconds_per_trial": f"{o.seconds_per_trial:.3g}"
               for k, o in {**d.images, **d.outputs}.items() if o.seconds_per_trial}
    return {"checkpoint": checkpoint.resolve(), "recordings": ", ".join(map(str, recordings)), "trials": len(d.trials),
            "input": f"{epochs.n_channels} channels × {epochs.n_times} samples at {epochs.sfreq:g} Hz",
            "latent space": f"{pipe.target.kind} ({d.latents.shape[1]}-d)",
            "aligner": type(pipe.aligner).__name__ + (f" — {pipe.selection['reason']}" if pipe.selection else ""),
            "heads": ", ".join(sorted(pipe.heads)) or "none", **timings,
            **({"confusion (rows: true, columns: predicted)": "; ".join(
                f"{c}: {row}" for c, row in zip(d.confusion["classes"], d.confusion["matrix"]))}
               if d.confusion else {}),
            **({"brain guidance": f"{len(pipe.guidance.voxels_)} best-encoded features, scale "
                                  f"{options['brain_scale']:g}"} if pipe.guidance else {}),
            "seconds": f"{time.perf_counter() - t_start:.1f}"}


def _check_request(checkpoint: Path, pipe: DecodingPipeline, heads: Sequence[str] | None) -> None:
    if heads is None:
        return
    missing = [h for h in heads if h != "retrieval" and h not in pipe.heads]
    if missing:
        raise ValueError(f"{checkpoint}: field 'heads': this checkpoint has heads {sorted(pipe.head_configs)}, not "
                         f"{missing}")
    if "retrieval" in heads and pipe.gallery is None:
        raise ValueError(f"{checkpoint}: field 'heads': 'retrieval' asked for, but the checkpoint has no retrieval "
                         "gallery (no stimulus table at training time)")


def reconstruct(checkpoint: str | os.PathLike, recordings: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                *, heads: Sequence[str] | None = None, subject: str | None = None, query: str | None = None,
                n_samples: int | None = None, steps: int | None = None, strength: float | None = None,
                seed: int = 0, device: str | None = None, batch_size: int = 8, progress: bool = True,
                title: str | None = None, notices: Sequence[str] = (), overwrite: bool = False,
                brain_scale: float | None = None) -> dict[str, Any]:
    """Decode recordings with a trained pipeline and write outputs and ``report.html`` into ``out_dir``.

    Parameters
    ----------
    checkpoint : a folder written by ``neurodecode train`` (``<run>/checkpoint``).
    recordings : an epoch store (.h5) or the raw files / folder the checkpoint's data recipe reads.
    heads : which outputs to make among :data:`OUTPUTS` (default: all the checkpoint has).
    subject, query : the subject of a collection store; a table query selecting trials (e.g. ``"split == 'test'"``).
    n_samples, steps, strength : image-head settings (default: the training config's ``images`` section).
    brain_scale : encoder-guided generation's weight (default ``images.brain_guidance.scale``; 0: off) for a
        checkpoint trained with ``images.brain_guidance.top_voxels`` > 0.
    overwrite : write into a folder that already holds a reconstruction.

    Returns
    -------
    dict with ``report`` (path), ``scores`` (list of rows), ``baseline`` (the paired comparison with the plain
    baseline, rows; empty when the checkpoint has none), ``n_trials``, ``seconds`` and, for a labels objective,
    ``confusion``.
    """
    from neurodecode.core.files import OutputFolder
    from neurodecode.heads.writing import check_writable

    t_start = time.perf_counter()
    checkpoint = Path(checkpoint)
    if heads is not None and any(h not in OUTPUTS for h in heads):
        fail("heads", f"names among {list(OUTPUTS)}", [h for h in heads if h not in OUTPUTS])
    pipe = DecodingPipeline.load(checkpoint, device=device, heads=heads)
    _check_request(checkpoint, pipe, heads)
    options = image_options(pipe, n_samples, steps, strength, brain_scale)
    if not overwrite and (Path(out_dir) / "report.html").exists():
        raise FileExistsError(f"{out_dir}: a reconstruction is already there (report.html); choose another folder "
                              "or pass --overwrite")
    epochs = read_recordings(pipe, recordings, subject, query, str(checkpoint))   # refused before anything is written
    out = check_writable(out_dir)
    # locked for this run; written in a staging folder and moved in only once complete (a killed or concurrent
    # run leaves nothing half-written here, an earlier run's outputs are all replaced or none)
    with OutputFolder(out, overwrite=overwrite, marker="report.html") as staging:
        d = decode(pipe, epochs, outputs=OUTPUTS if heads is None else heads, options=options, seed=seed,
                   batch_size=batch_size, progress=progress)
        scores = score(pipe, d, seed)
        plot = write_outputs(d, staging, scores)
        report(pipe, d, epochs, staging, scores, plot, notices=notices,
               title=title or f"neurodecode reconstruction — {checkpoint.parent.name}",
               details=_details(checkpoint, recordings, epochs, pipe, d, options, t_start))
    page = out / "report.html"
    return {"report": page, "scores": [] if scores is None else json.loads(scores.to_json()),
            "baseline": [] if d.comparison is None else d.comparison.to_dict(orient="records"),
            "n_trials": len(d.trials), "seconds": time.perf_counter() - t_start,
            **({"confusion": d.confusion} if d.confusion is not None else {})}
