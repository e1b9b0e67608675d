"""The built-in example: real EEG → common epoch format → on-disk store → torch Dataset → a decoding score.

PhysioNet EEG Motor Movement/Imagery, subject 1, runs 4/8/12 (imagined left vs right fist): each EDF run goes
through :func:`neurodecode.loaders.meeg.load_epochs` (standard channel names and positions, band-pass, epochs 1–2 s after
the cue); the runs are concatenated into one :class:`~neurodecode.EpochSet` and written to one chunked HDF5 store. The store is reopened lazily, served through :class:`~neurodecode.core.datasets.EpochDataset`
with per-subject batches, and decoded with neurodecode's Riemannian recipes (OAS covariance → tangent space →
logistic regression, and the augmented covariance with Takens-selected order/lag) through the evaluation harness:
5-fold stratified CV (seed 42), plus leave-one-run-out splits from :func:`~neurodecode.core.datasets.split_epochs`.
The recipe is ``conf/example/eegmmidb_imagery.yaml``.

May import: every stage.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurodecode.core.configs import conf_dir, load_yaml
from neurodecode.core.logs import logger
from neurodecode.core.persistence import dumps
from neurodecode.core.epochs import EpochSet, concatenate
from neurodecode.loaders.manifests import fetch_file, load_manifest, verify_file
from neurodecode.core.storage import EpochStore, save

EXAMPLE_CONFIG = conf_dir() / "example" / "eegmmidb_imagery.yaml"


def load_config(overrides: Sequence[str] = ()) -> Any:
    """The example recipe with ``key=value`` overrides (OmegaConf dot-list syntax) applied."""
    return load_yaml(EXAMPLE_CONFIG, overrides)


def locate_runs(cfg: Any) -> dict[int, Path]:
    """Find (or download) the EDF file of each run, verified against the manifest's sha256."""
    manifest = load_manifest(cfg.dataset)
    candidates = []
    if cfg.data_dir:
        candidates.append(Path(cfg.data_dir))
    if os.environ.get("NEURODECODE_DATA"):
        candidates.append(Path(os.environ["NEURODECODE_DATA"]) / f"eegmmidb_{cfg.subject}")
    # a development checkout: ../shared/data beside the repository
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "data" / f"eegmmidb_{cfg.subject}")
    out = {}
    for run in cfg.runs:
        rel = f"{cfg.subject}/{cfg.subject}R{int(run):02d}.edf"
        if rel not in manifest["files"]:
            raise ValueError(f"data_manifests/{cfg.dataset}.yaml: field 'files': expected an entry for {rel}")
        local = [c / Path(rel).name for c in candidates if (c / Path(rel).name).is_file()]
        path = local[0] if local else fetch_file(manifest, rel)
        verify_file(path, manifest["files"][rel])
        out[int(run)] = path
    return out


def epochs_from_run(path: Path, run: int, cfg: Any) -> EpochSet:
    """Read one EDF run, apply the recipe's preprocessing steps and cut it into labelled epochs."""
    from omegaconf import OmegaConf

    from neurodecode.loaders.meeg import load_epochs

    steps = OmegaConf.to_container(cfg.preprocessing, resolve=True)
    ep = load_epochs(path, return_report=False, steps=steps, tmin=float(cfg.tmin), tmax=float(cfg.tmax), labels=dict(cfg.events),
                        subject=cfg.subject, session="1", run=str(run))
    return ep


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folds = results["cv_fold_accuracy"]
    loro = results["leave_one_run_out"]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(range(len(folds)), folds, color="tab:blue", label="5-fold CV folds (tangent space)")
    ax.bar([len(folds) + 1 + i for i in range(len(loro))], list(loro.values()), color="tab:orange",
           label="leave-one-run-out")
    ax.axhline(results["reference_accuracy"], color="k", ls="--", lw=1, label="pyRiemann reference")
    ax.axhline(0.5, color="grey", ls=":", lw=1, label="chance")
    ax.set_xticks(list(range(len(folds))) + [len(folds) + 1 + i for i in range(len(loro))],
                  [f"f{i}" for i in range(len(folds))] + [f"run {r}" for r in loro])
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.set_title("EEGMMIDB S001 imagined left vs right fist")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _read_through_dataset(store_path: Path) -> tuple[np.ndarray, np.ndarray, Any, tuple, int, list]:
    """The stored epochs read back lazily through EpochDataset with per-subject batches: X, y (class indices),
    the table, the shape, epochs per chunk and the classes."""
    import torch

    from neurodecode.core.datasets import EpochDataset, SubjectBatchSampler

    with EpochStore(store_path) as store:
        dataset = EpochDataset(store, target="label")
        sampler = SubjectBatchSampler(dataset.subject_codes, batch_size=32, shuffle=False)
        xs, ys, rows = [], [], []
        for batch in torch.utils.data.DataLoader(dataset, batch_sampler=sampler):
            xs.append(batch["x"].numpy())
            ys.append(batch["y"].numpy())
            rows.append(batch["index"].numpy())
        order = np.argsort(np.concatenate(rows))
        return (np.concatenate(xs)[order].astype(np.float64), np.concatenate(ys)[order], store.table, store.shape,
                store.chunk_epochs, dataset.classes)


def _classifier(cfg: Any, recipe: str, **params: Any) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from neurodecode.encoders.features import make_recipe

    steps = make_recipe(recipe, estimator=cfg.decoder.covariance, **params).steps
    return Pipeline(steps + [("lr", LogisticRegression(C=float(cfg.decoder.classifier_C), max_iter=1000))])


def _decode(cfg: Any, epochs: EpochSet, runs: Sequence[int], out_dir: Path) -> dict[str, Any]:
    """The tangent-space and augmented recipes by 5-fold CV, the tangent space by leave-one-run-out."""
    from neurodecode.core.datasets import split_epochs
    from neurodecode.evaluation.classification import evaluate

    X, y, table = epochs.data.astype(np.float64), epochs.table["label"].to_numpy(), epochs.table
    cv = {"n_splits": int(cfg.cv.n_splits), "seed": int(cfg.cv.seed)}
    ts = evaluate(epochs, _classifier(cfg, "tangent_space"), "within_session", **cv)
    aug_pipe = _classifier(cfg, "augmented_tangent_space", order=cfg.decoder.augmented.order,
                           lag=cfg.decoder.augmented.lag)
    aug = evaluate(epochs, aug_pipe, "within_session", **cv)
    folds = ts.scores.query("metric == 'accuracy'")["value"].to_numpy()
    aug_folds = aug.scores.query("metric == 'accuracy'")["value"].to_numpy()
    aug_fit = aug_pipe.named_steps["cov"].fit(X)
    loro = {}
    for run in runs:
        split = split_epochs(table, by="run", test=[str(run)], on_shared_stimulus="raise")
        model = _classifier(cfg, "tangent_space").fit(X[split.train], y[split.train])
        loro[str(run)] = float(model.score(X[split.test], y[split.test]))
    ts.to_json(out_dir / "scores_tangent_space.json")
    aug.to_json(out_dir / "scores_augmented.json")
    return {"cv_accuracy_mean": float(folds.mean()), "cv_accuracy_std": float(folds.std()),
            "cv_fold_accuracy": [float(f) for f in folds], "cv_summary": ts.summary().to_dict(orient="records"),
            "augmented": {"order": aug_fit.order_, "lag": aug_fit.lag_, "cv_accuracy_mean": float(aug_folds.mean()),
                          "cv_accuracy_std": float(aug_folds.std()),
                          "cv_fold_accuracy": [float(f) for f in aug_folds]},
            "leave_one_run_out": loro}


def _summarise(results: dict[str, Any], say: Any) -> None:
    shape, aug = results["shape"], results["augmented"]
    say(f"epochs: {shape[0]} × {shape[1]} channels × {shape[2]} samples at {results['sfreq']:g} Hz "
        f"({results['class_counts']}) → {results['store']} ({results['store_bytes'] / 1e6:.1f} MB, "
        f"{results['chunk_epochs']} epoch(s)/chunk)")
    say(f"5-fold CV accuracy (OAS + tangent space + LR): {results['cv_accuracy_mean']:.3f} ± "
        f"{results['cv_accuracy_std']:.3f} (plain pyRiemann reference {results['reference_accuracy']:.3f}, "
        "chance 0.5)")
    say(f"augmented covariance (order {aug['order']}, lag {aug['lag']} samples) + tangent space + LR: "
        f"{aug['cv_accuracy_mean']:.3f} ± {aug['cv_accuracy_std']:.3f}")
    say("leave-one-run-out accuracy: " + ", ".join(f"run {r}: {a:.3f}"
                                                   for r, a in results["leave_one_run_out"].items()))


def run_example(overrides: Sequence[str] = (), verbose: bool = True) -> dict:
    """Run the example end to end; returns (and writes to ``out_dir/results.json``) the figures it measured."""
    from tqdm.auto import tqdm

    say = logger.info if verbose else (lambda *a, **k: None)
    cfg = load_config(overrides)
    t0 = time.perf_counter()
    files = locate_runs(cfg)
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    store_path = out_dir / f"sub-{cfg.subject}_{cfg.dataset}.h5"
    # 1. recordings → EpochSets (one per run) → one chunked, atomically written store
    runs = [epochs_from_run(path, run, cfg) for run, path in tqdm(files.items(), desc="epoching runs",
                                                                   disable=not verbose)]
    first = concatenate(runs)
    save(first, store_path, overwrite=True, chunk_bytes=int(cfg.chunk_bytes))
    t_store = time.perf_counter()
    # 2. lazy store → torch Dataset → per-subject batches
    X, y, table, shape, chunk_epochs, classes = _read_through_dataset(store_path)
    t_read = time.perf_counter()
    # 3. decoding with neurodecode's Riemannian recipes through the evaluation harness
    epochs = EpochSet(X, first.sfreq, first.channels, table.assign(label=y), first.tmin, first.provenance)
    decoded = _decode(cfg, epochs, list(files), out_dir)
    t_fit = time.perf_counter()
    results = {
        "dataset": cfg.dataset, "subject": cfg.subject, "runs": list(files),
        "store": str(store_path), "store_bytes": store_path.stat().st_size,
        "shape": list(shape), "chunk_epochs": chunk_epochs, "sfreq": float(first.sfreq),
        "classes": classes, "class_counts": {str(k): int(v) for k, v in table["label"].value_counts().items()},
        **decoded, "reference_accuracy": float(cfg.reference_accuracy),
        "seconds": {"load_and_store": round(t_store - t0, 2), "read_via_dataset": round(t_read - t_store, 2),
                    "decode": round(t_fit - t_read, 2)},
    }
    (out_dir / "results.json").write_text(dumps(results, indent=2))
    _plot(results, out_dir / "accuracy.png")
    _summarise(results, say)
    say(f"wrote {out_dir / 'results.json'} and {out_dir / 'accuracy.png'} in {t_fit - t0:.1f} s")
    return results
