"""Benchmarks: what every script of ``benchmarks/`` shares (one argument set, one JSON result file), and the
``neurodecode benchmark`` command.

* :func:`benchmark_parser` — ``--data`` (the folder of the shared recordings; default ``$NEURODECODE_SHARED_DATA``,
  else ``../shared/data`` beside the repository), ``--seed`` and ``--out`` (the results folder); a benchmark adds
  its own options to it.
* :func:`write_results` — ``<out>/<name>.json``: the benchmark's name, its arguments, the machine (Python, torch,
  CPU count, GPU) and its results (strict JSON: NaN becomes null), so that a figure in the documentation names the
  command and the machine that produced it.
* :func:`run_benchmark` — ``neurodecode benchmark``: every dataset × pipeline × evaluation cell of
  ``conf/benchmark.yaml`` (``conf/dataset``, ``conf/pipeline``; MOABB's own evaluation beside ours where a dataset
  has an offline MOABB reader) → :class:`BenchmarkResult`, written as a results table, a summary and a figure per
  dataset; finished cells are kept and read back.

Cross-validation in a benchmark is the library's own (:func:`~neurodecode.evaluation.classification.evaluate`), and
data sets are read by :mod:`neurodecode.loaders.public`: a benchmark imports no other benchmark.

May import: ``neurodecode.core`` … ``neurodecode.heads``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from neurodecode.core.logs import logger
from neurodecode.core.persistence import dumps
from neurodecode.core.validation import fail

__all__ = ["BENCHMARK_PARADIGMS", "MOABB_EVALUATION", "RESULT_COLUMNS", "BenchmarkResult", "benchmark_parser",
           "build_pipeline", "default_data", "epoching", "machine", "parse_evaluation", "record_accuracy",
           "run_benchmark", "write_results"]


def default_data() -> Path:
    """``$NEURODECODE_SHARED_DATA``, else ``shared/data`` beside the repository of the running benchmark
    (``benchmarks/<name>.py``), else ``../shared/data`` from the current folder."""
    if "NEURODECODE_SHARED_DATA" in os.environ:
        return Path(os.environ["NEURODECODE_SHARED_DATA"])
    script = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    beside_repo = script.parents[2] / "shared" / "data" if script is not None and len(script.parents) > 2 else None
    if beside_repo is not None and beside_repo.is_dir():
        return beside_repo
    return Path.cwd().parent / "shared" / "data"


def benchmark_parser(description: str, name: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the shared ``--data``, ``--seed`` and ``--out`` (default ``results/<name>``)."""
    p = argparse.ArgumentParser(description=description, prog=f"python benchmarks/{name}.py")
    p.add_argument("--data", type=Path, default=default_data(),
                   help="folder of the shared recordings (default: $NEURODECODE_SHARED_DATA or ../shared/data)")
    p.add_argument("--seed", type=int, default=0, help="seed of every random choice of the benchmark")
    p.add_argument("--out", type=Path, default=Path("results") / name, help="folder for <name>.json and figures")
    return p


def machine() -> dict[str, Any]:
    """The machine a result was measured on."""
    import torch

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def epoching(epochs: Any) -> dict[str, Any]:
    """How epochs were made, for a results file: sampling rate, window, shape and their processing steps as applied
    (``EpochSet.processing``: filters with their actual pass bands, epoch windows; per-recording details — files,
    drop counts and reports — left out)."""
    first = epochs if hasattr(epochs, "provenance") else epochs[next(iter(epochs))]   # an EpochCollection
    return {"sfreq": float(first.sfreq), "tmin": float(first.tmin), "n_times": int(first.n_times),
            "n_channels": int(first.n_channels), "steps": first.processing}


def write_results(args: argparse.Namespace, name: str, results: Mapping[str, Any],
                  epochs: Mapping[str, Any] | None = None) -> Path:
    """Write ``<args.out>/<name>.json`` (arguments, machine, results and, with ``epochs`` — a name → EpochSet
    mapping —, how each set was epoched: :func:`epoching`) and return its path."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    record = {"benchmark": name, "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
              "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "machine": machine(), "results": dict(results)}
    if epochs:
        record["epoching"] = {k: epoching(v) for k, v in epochs.items()}
    path.write_text(dumps(record, indent=1))
    return path


def record_accuracy(results: dict, key: str, name: str, epochs: Any, pipeline: Any, scheme: str,
                    **evaluate_kw: Any) -> str:
    """``evaluate(epochs, pipeline, scheme, seed=42, **evaluate_kw)``; its per-subject mean accuracy, their mean and
    the seconds it took go into ``results[key][name]``; returns them as one line for the benchmark to print."""
    import time

    from neurodecode.evaluation.classification import evaluate

    t0 = time.perf_counter()
    res = evaluate(epochs, pipeline, scheme, seed=42, **evaluate_kw)
    acc = res.scores[res.scores["metric"] == "accuracy"]
    per = acc.groupby("subject")["value"].mean()
    seconds = time.perf_counter() - t0
    results.setdefault(key, {})[name] = {"accuracy": round(float(per.mean()), 4),
                                         "per_subject": per.round(4).to_dict(), "seconds": round(seconds, 1)}
    return f"  {key:26s} {name:48s} {per.mean():.3f}  ({', '.join(f'{v:.3f}' for v in per)})  {seconds:.0f} s"


# --------------------------------------------------------------------------------------------------------------------
# `neurodecode benchmark`: datasets × pipelines × evaluations (conf/benchmark.yaml, conf/dataset, conf/pipeline)

#: paradigms a dataset config may declare (``motor_imagery`` is an oscillatory paradigm with its own name)
BENCHMARK_PARADIGMS = ("motor_imagery", "oscillatory", "erp", "ssvep")
#: MOABB's own within-session evaluation of a pipeline on the files MOABB reads (a dataset's ``moabb`` block)
MOABB_EVALUATION = "moabb_within_session"
#: offline MOABB readers of the shared recordings, by the name a dataset's ``moabb.reader`` gives
MOABB_READERS = {"physionet_mi": "neurodecode.loaders.moabb.offline_physionet_mi"}
#: columns of the results table (one row per fold, or per subject × session for MOABB's own scores)
RESULT_COLUMNS = ["dataset", "evaluation", "pipeline", "source", "subject", "session", "fold", "n_train", "n_test",
                  "metric", "score", "fit_seconds", "predict_seconds"]


def parse_evaluation(name: str) -> tuple[str, str | None]:
    """``"cross_subject+recenter"`` → ``("cross_subject", "recenter")``; ``"within_session"`` →
    ``("within_session", None)``; :data:`MOABB_EVALUATION` → ``(MOABB_EVALUATION, None)``."""
    from neurodecode.evaluation.classification import SCHEMES, TRANSFERS

    scheme, _, transfer = str(name).partition("+")
    known = [*SCHEMES, *(f"{s}+{t}" for s in ("cross_session", "cross_subject") for t in TRANSFERS),
             MOABB_EVALUATION]
    if name != MOABB_EVALUATION and (scheme not in SCHEMES or (transfer and (
            transfer not in TRANSFERS or scheme.startswith("within")))):
        fail("evaluations", f"names among {known}", repr(name))
    return scheme, transfer or None


def _cell_config(cfg: Any, dataset: str, pipeline: str) -> tuple[dict, dict]:
    """The dataset's and the pipeline's configs as plain dicts, the pipeline's ``${dataset.KEY}`` resolved."""
    from omegaconf import OmegaConf

    ds = OmegaConf.to_container(cfg.datasets[dataset], resolve=False)
    pipe = OmegaConf.to_container(cfg.pipelines[pipeline], resolve=False)
    try:
        both = OmegaConf.to_container(OmegaConf.create({"dataset": ds, "pipeline": pipe}), resolve=True)
    except Exception as err:  # an interpolation naming a key the dataset lacks
        raise ValueError(f"conf/pipeline/{pipeline}.yaml: a ${{dataset.KEY}} value that dataset {dataset!r} does "
                         f"not set ({type(err).__name__}: {err})") from None
    return both["dataset"], both["pipeline"]


_DATASET_KEYS = {"name", "paradigm", "covariance", "evaluations", "epochs", "moabb"}
_PIPELINE_KEYS = {"name", "paradigms", "evaluations", "recipe", "overrides", "steps", "epochs", "labels"}


def _check_dataset(name: str, ds: Mapping[str, Any]) -> None:
    where = f"datasets.{name} (conf/dataset/{name}.yaml)"
    unknown = sorted(set(ds) - _DATASET_KEYS)
    if unknown:
        raise ValueError(f"{where}: fields {unknown}: expected only {sorted(_DATASET_KEYS)}")
    if ds.get("paradigm") not in BENCHMARK_PARADIGMS:
        raise ValueError(f"{where}: field 'paradigm': expected one of {list(BENCHMARK_PARADIGMS)}, "
                         f"got {ds.get('paradigm')!r}")
    epochs = ds.get("epochs")
    if not isinstance(epochs, Mapping) or "default" not in epochs or not all(
            isinstance(v, Mapping) and "_target_" in v for v in epochs.values()):
        raise ValueError(f"{where}: field 'epochs': expected named epochings with a 'default', each a loader "
                         f"config with _target_, got {epochs!r}")
    if not isinstance(ds.get("evaluations"), (list, tuple)) or not ds["evaluations"]:
        raise ValueError(f"{where}: field 'evaluations': expected a list of evaluations, got "
                         f"{ds.get('evaluations')!r}")
    for e in ds["evaluations"]:
        try:
            parse_evaluation(e)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    moabb = ds.get("moabb")
    if moabb is not None and (not isinstance(moabb, Mapping) or moabb.get("reader") not in MOABB_READERS
                              or not isinstance(moabb.get("paradigm"), Mapping)):
        raise ValueError(f"{where}: field 'moabb': expected null or {{reader: one of {list(MOABB_READERS)}, "
                         f"subjects: [...], paradigm: {{_target_: moabb.paradigms...}}}}, got {moabb!r}")


def _check_pipeline(name: str, pipe: Mapping[str, Any]) -> None:
    where = f"pipelines.{name} (conf/pipeline/{name}.yaml)"
    unknown = sorted(set(pipe) - _PIPELINE_KEYS)
    if unknown:
        raise ValueError(f"{where}: fields {unknown}: expected only {sorted(_PIPELINE_KEYS)}")
    bad = sorted(set(pipe.get("paradigms") or []) - set(BENCHMARK_PARADIGMS))
    if not pipe.get("paradigms") or bad:
        raise ValueError(f"{where}: field 'paradigms': expected a list among {list(BENCHMARK_PARADIGMS)}, got "
                         f"{pipe.get('paradigms')!r}")
    if not pipe.get("recipe") and not pipe.get("steps"):
        raise ValueError(f"{where}: fields 'recipe'/'steps': expected a feature recipe, estimator steps or both")
    for e in pipe.get("evaluations") or []:
        try:
            parse_evaluation(e)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    if pipe.get("labels", "all") not in ("all", "frequencies"):
        raise ValueError(f"{where}: field 'labels': expected 'all' or 'frequencies', got {pipe.get('labels')!r}")


def build_pipeline(pipe: Mapping[str, Any], where: str = "pipeline") -> Any:
    """A scikit-learn ``Pipeline`` from a ``conf/pipeline`` config: the feature recipe (``recipe`` of
    ``conf/features`` with its ``overrides``), then the ``steps`` (``_target_`` configs, allowlisted)."""
    from sklearn.pipeline import Pipeline

    from neurodecode.core.configs import instantiate
    from neurodecode.encoders.features import load_recipe_config, make_recipe

    steps: list = []
    if pipe.get("recipe"):
        params = load_recipe_config(pipe["recipe"], [str(o) for o in pipe.get("overrides") or []])
        steps += make_recipe(params.pop("name"), **params).steps
    for k, step in enumerate(pipe.get("steps") or []):
        est = instantiate(step, f"{where}: field 'steps[{k}]'")
        steps.append((f"{k}_{type(est).__name__.lower()}", est))
    return Pipeline(steps)


def _frequency_epochs(epochs: Any, where: str) -> Any:
    """The epochs whose label names a stimulation frequency (``labels: frequencies``); an error naming the labels
    when none does."""
    from neurodecode.loaders.preprocessing import ssvep_frequencies

    labels = epochs.table["label"].astype(str)
    ssvep_frequencies(labels.unique().tolist())
    keep = labels.map(_is_frequency).to_numpy(dtype=bool)
    if keep.all():
        return epochs
    logger.info("%s: %d of %d epochs have a label naming a frequency (%s dropped)", where, int(keep.sum()),
                len(keep), sorted(set(labels[~keep])))
    return epochs[keep]


def _is_frequency(label: str) -> bool:
    from neurodecode.loaders.preprocessing import ssvep_frequencies

    try:
        ssvep_frequencies([label])
    except ValueError:
        return False
    return True


def _cell_hash(*parts: Any) -> str:
    import hashlib

    return hashlib.sha256(dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _safe_name(name: str, what: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]*", str(name)) or ".." in str(name):
        fail(what, "a name of letters, digits, '_', '.', '+' and '-' (it names a results file)", repr(name))
    return str(name)


def _chance(metric: str, n_classes: int) -> float:
    return 0.5 if metric == "roc_auc" else 1.0 / max(n_classes, 1)


@dataclasses.dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` measured.

    Attributes
    ----------
    scores : DataFrame
        :data:`RESULT_COLUMNS`: one row per fold and metric (MOABB's own scores: per subject × session).
    subjects : DataFrame
        The mean over folds and sessions of each subject (``dataset, evaluation, pipeline, source, subject,
        metric, score``).
    summary : DataFrame
        Per ``dataset, evaluation, pipeline, source, metric``: the mean over subjects, its standard deviation,
        a 95 % Student-t interval over subjects, ``n_subjects``, ``chance`` (1 / classes; 0.5 for ROC-AUC) and the
        fit and predict seconds summed over folds.
    comparisons : DataFrame
        Each pipeline minus the baseline pipeline on the same test trials (:func:`~neurodecode.evaluation.
        classification.compare_evaluations`, with ``dataset`` and ``evaluation``).
    skipped : list of dict
        The cells not run, with the reason (a paradigm the pipeline is not for, an epoching the dataset lacks, an
        alignment without a covariance step, ...).
    cells : dict
        Per cell (``dataset/evaluation/pipeline``): whether it was computed or read back, its seconds and how its
        epochs were made (:func:`epoching`).
    """

    scores: pd.DataFrame
    subjects: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    skipped: list
    cells: dict

    def table(self, dataset: str) -> str:
        """A Markdown table of ``dataset``: one row per pipeline, one column per evaluation (the headline metric's
        mean over subjects and its 95 % interval), MOABB's evaluation as ``MOABB's / neurodecode's`` ROC-AUC."""
        if self.summary.empty:
            return ""
        s = self.summary[self.summary["dataset"] == dataset]
        if s.empty:
            return ""
        metric = _headline(s)
        evaluations = list(dict.fromkeys(s["evaluation"]))
        head = [f"pipeline ({metric}; ROC-AUC for MOABB)"] + [e.replace("_", " ") for e in evaluations] + ["chance"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for pipeline in dict.fromkeys(s["pipeline"]):
            cells = []
            for e in evaluations:
                rows = s[(s["pipeline"] == pipeline) & (s["evaluation"] == e)]
                if e == MOABB_EVALUATION:
                    r = rows[rows["metric"] == "roc_auc"].set_index("source")["mean"]
                    cells.append(f"{r['moabb']:.3f} / {r['neurodecode']:.3f}" if {"moabb", "neurodecode"} <= set(
                        r.index) else "")
                    continue
                r = rows[(rows["metric"] == metric) & (rows["source"] == "neurodecode")]
                cells.append("" if r.empty else f"{r['mean'].iloc[0]:.3f} [{r['ci_low'].iloc[0]:.2f}, "
                                                f"{r['ci_high'].iloc[0]:.2f}]")
            chance = s[(s["pipeline"] == pipeline) & (s["metric"] == metric)]["chance"]
            lines.append(f"| {pipeline} | " + " | ".join(cells) + f" | {chance.max():.2f} |")
        return "\n".join(lines)

    def plot(self, dataset: str, path: str | Path | None = None) -> Any:
        """One panel per evaluation: each pipeline's subjects (dots), their mean with its 95 % interval (bar) and
        the chance level (dashed); MOABB's evaluation shows MOABB's score (grey) beside neurodecode's on the same
        epochs."""
        import textwrap

        import matplotlib.pyplot as plt

        from neurodecode.evaluation.plots import finish_figure

        s = self.summary[self.summary["dataset"] == dataset]
        subj = self.subjects[self.subjects["dataset"] == dataset]
        metric = _headline(s)
        evaluations = list(dict.fromkeys(s["evaluation"]))
        ncols = min(3, len(evaluations))
        nrows = -(-len(evaluations) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.8 * ncols, 3.4 * nrows), squeeze=False, sharey=True)
        for ax in axes.flat[len(evaluations):]:
            ax.set_visible(False)
        for ax, e in zip(axes.flat, evaluations):
            m = "roc_auc" if e == MOABB_EVALUATION else metric
            rows = s[(s["evaluation"] == e) & (s["metric"] == m)]
            names = list(dict.fromkeys(rows["pipeline"]))
            for k, name in enumerate(names):
                for source, shift, color in (("neurodecode", 0.0, "tab:blue"), ("moabb", 0.3, "tab:grey")):
                    r = rows[(rows["pipeline"] == name) & (rows["source"] == source)]
                    if r.empty:
                        continue
                    r = r.iloc[0]
                    x = k + (shift - 0.15 if e == MOABB_EVALUATION else 0.0)
                    err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]] if r["n_subjects"] > 1 else None
                    ax.bar(x, r["mean"], width=0.28 if e == MOABB_EVALUATION else 0.6, yerr=err, color=color,
                           alpha=0.55, capsize=3, label=source if (k == 0 and e == MOABB_EVALUATION) else None)
                    v = subj[(subj["evaluation"] == e) & (subj["pipeline"] == name) & (subj["source"] == source)
                             & (subj["metric"] == m)]["score"].to_numpy()
                    ax.plot(x + np.linspace(-0.08, 0.08, len(v)), v, "k.", ms=3)
                    ax.hlines(r["chance"], x - 0.3, x + 0.3, colors="tab:red", linestyles="--", lw=1)
            ax.set_xticks(range(len(names)), [textwrap.fill(n, 16) for n in names], rotation=30, ha="right",
                          fontsize=6.5)
            ax.set_title(f"{e.replace('_', ' ')}\n({m.replace('_', ' ')})", fontsize=8)
            ax.set_ylim(0, 1.02)
            if e == MOABB_EVALUATION:
                ax.legend(fontsize=6, loc="lower right")
        for row in axes:
            row[0].set_ylabel("per subject (dots), mean ± 95 % CI;\nchance dashed", fontsize=7)
        fig.suptitle(dataset, fontsize=9)
        return finish_figure(fig, path)


def _headline(summary: pd.DataFrame) -> str:
    """Balanced accuracy where a cell's classes are imbalanced, else accuracy (read from the cells)."""
    return "balanced_accuracy" if summary.get("imbalanced", pd.Series(dtype=bool)).fillna(False).any() else "accuracy"


def _summaries(scores: pd.DataFrame, cells: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    from neurodecode.evaluation.classification import student_interval

    keys = ["dataset", "evaluation", "pipeline", "source"]
    subjects = (scores.groupby([*keys, "subject", "metric"], sort=False)["score"].mean().reset_index())
    timing = scores.drop_duplicates([*keys, "subject", "session", "fold"]).groupby(keys, sort=False)[
        ["fit_seconds", "predict_seconds"]].sum(min_count=1)
    rows = []
    for (d, e, p, src, metric), grp in subjects.groupby([*keys, "metric"], sort=False):
        stat = student_interval(grp["score"], metric)
        cell = cells.get(f"{d}/{e}/{p}", {})
        t = timing.loc[(d, e, p, src)]
        rows.append({"dataset": d, "evaluation": e, "pipeline": p, "source": src, "metric": metric,
                     "mean": stat["mean"], "std": stat["std"], "ci_low": stat["ci_low"], "ci_high": stat["ci_high"],
                     "n_subjects": stat["n"],
                     "chance": _chance(metric, int(cell.get("n_classes", 2))),
                     "imbalanced": bool(cell.get("imbalanced", False)),
                     "fit_seconds": float(t["fit_seconds"]), "predict_seconds": float(t["predict_seconds"])})
    return subjects, pd.DataFrame(rows)


def run_benchmark(config: Any, *, datasets: Sequence[str] | None = None, pipelines: Sequence[str] | None = None,
                  evaluations: Sequence[str] | None = None, log: Any = None) -> BenchmarkResult:
    """Run every dataset × pipeline × evaluation cell of a benchmark config and write its results.

    Parameters
    ----------
    config : DictConfig or mapping
        ``conf/benchmark.yaml`` composed (:func:`neurodecode.core.configs.compose` with
        ``config_name="benchmark"``): ``datasets`` (``conf/dataset`` entries: paradigm, covariance estimator,
        evaluations, named epochings — loader configs — and an optional ``moabb`` block), ``pipelines``
        (``conf/pipeline`` entries: the paradigms they are for, a feature recipe and/or estimator steps, the
        epoching and labels they read), ``data_root``, ``out_dir``, ``seed``, ``n_splits``, ``baseline`` and
        ``rerun``. Every ``_target_`` is checked against the allowlist before anything is imported.
    datasets, pipelines, evaluations : optional subsets (names) of the config's to run.
    log : callable taking one line, optional
        Progress (one line per cell; default: the ``neurodecode`` logger).

    Returns
    -------
    BenchmarkResult
        Also written to ``out_dir``: ``results.csv`` (:data:`RESULT_COLUMNS`), ``results.json`` (the config, the
        machine, each cell's epoching and seconds, the per-subject scores, the summary, the comparisons and the
        skipped cells), ``summary.md`` (a table per dataset, :meth:`BenchmarkResult.table`) and
        ``<dataset>.png`` (:meth:`BenchmarkResult.plot`). Each finished cell is kept in
        ``out_dir/cells/<dataset>/<evaluation>/<pipeline>.json`` with a hash of its settings: a later run with
        the same settings reads it back instead of recomputing it (``rerun=true`` recomputes; the hash covers the
        settings — epoching, pipeline, evaluation, seed, folds — not the code). Another run
        writing into the same ``out_dir`` meanwhile is refused (a lock).
    """
    from omegaconf import DictConfig, OmegaConf

    from neurodecode.core.configs import check_targets
    from neurodecode.core.files import WriteLock

    cfg = config if isinstance(config, DictConfig) else OmegaConf.create(dict(config))
    check_targets(cfg, "benchmark config")
    log = log or logger.info
    out = Path(cfg.get("out_dir") or "benchmark_results")
    base_name = cfg.get("baseline")
    names_ds, names_p, display = _selected(cfg, datasets, pipelines, evaluations)
    out.mkdir(parents=True, exist_ok=True)
    lock = WriteLock(out / "results.json")
    try:
        plan, skipped = _plan(cfg, names_ds, names_p, evaluations, log)
        loaded: dict = {}
        frames, cells, results = [], {}, {}
        for i, (d, e, p) in enumerate(plan, 1):
            where = f"[{i}/{len(plan)}] {d} × {e} × {p}"
            cell = _run_cell(cfg, d, e, p, out, loaded)
            if isinstance(cell, str):
                skipped.append({"dataset": d, "evaluation": e, "pipeline": p, "reason": cell})
                log(f"{where}: not run ({cell})")
                continue
            cells[f"{d}/{e}/{display[p]}"] = {k: cell[k] for k in ("seconds", "n_classes", "imbalanced", "epoching",
                                                                    "labels", "computed")}
            scores = pd.DataFrame(cell["scores"])
            frames.append(scores)
            results[(d, e, p)] = cell
            head = "roc_auc" if e == MOABB_EVALUATION else ("balanced_accuracy" if cell["imbalanced"] else "accuracy")
            per = scores[(scores["metric"] == head)].groupby(["source", "subject"], sort=False)["score"].mean()
            line = ", ".join(f"{src} {v.mean():.3f}" for src, v in per.groupby(level=0, sort=False))
            how = f"{cell['seconds']:.0f} s" if cell["computed"] else "read back: finished earlier, same settings"
            log(f"{where}: {head} {line} over {per.index.get_level_values(1).nunique()} subjects ({how})")
        scores = (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=RESULT_COLUMNS))
        scores = scores.reindex(columns=RESULT_COLUMNS)
        subjects, summary = _summaries(scores, cells) if frames else (pd.DataFrame(), pd.DataFrame())
        comparisons = _comparisons(results, base_name, int(cfg.get("seed", 42)))
        result = BenchmarkResult(scores, subjects, summary, comparisons, skipped, cells)
        _write_outputs(result, cfg, out, names_ds, log)
    finally:
        lock.release()
    return result


def _selected(cfg: Any, datasets: Sequence[str] | None, pipelines: Sequence[str] | None,
              evaluations: Sequence[str] | None) -> tuple[list[str], list[str], dict[str, str]]:
    """The datasets and pipelines to run (names checked against the config's) and each pipeline's display name."""
    names_ds, names_p = list(cfg.datasets), list(cfg.pipelines)
    for what, chosen, known in (("--datasets", datasets, names_ds), ("--pipelines", pipelines, names_p)):
        missing = sorted(set(chosen or []) - set(known))
        if missing:
            fail(what, f"names among the config's {known}", missing)
    names_ds = [d for d in names_ds if datasets is None or d in datasets]
    names_p = [p for p in names_p if pipelines is None or p in pipelines]
    for e in evaluations or []:
        parse_evaluation(e)
    base_name = cfg.get("baseline")
    if base_name is not None and base_name not in cfg.pipelines:
        fail("baseline", f"a pipeline of the config {list(cfg.pipelines)} or null", repr(base_name))
    display = {p: str(cfg.pipelines[p].get("name") or p) for p in names_p}
    twice = sorted({n for n in display.values() if list(display.values()).count(n) > 1})
    if twice:
        fail("pipelines", "pipelines with distinct names (the results table's pipeline column)",
             f"{twice} given to {[p for p in names_p if display[p] in twice]}")
    return names_ds, names_p, display


def _plan(cfg: Any, names_ds: Sequence[str], names_p: Sequence[str], evaluations: Sequence[str] | None,
          log: Any) -> tuple[list[tuple[str, str, str]], list[dict]]:
    """The (dataset, evaluation, pipeline) cells to run, after checking every config; the pipelines that do not
    apply to a dataset at all (paradigm, epoching) as skipped cells."""
    from omegaconf import OmegaConf

    plan, skipped = [], []
    for d in names_ds:
        _safe_name(d, "datasets")
        configs = {_safe_name(p, "pipelines"): _cell_config(cfg, d, p) for p in names_p}
        for p, (ds, pipe) in configs.items():
            _check_dataset(d, ds)
            _check_pipeline(p, pipe)
        ds = next(iter(configs.values()))[0] if configs else OmegaConf.to_container(cfg.datasets[d])
        chosen = [_safe_name(e, "evaluations") for e in ds["evaluations"] if evaluations is None or e in evaluations]
        for p, (ds, pipe) in configs.items():
            reason = _not_for(ds, pipe)
            if reason is None:
                plan += [(d, e, p) for e in chosen]
            else:
                log(f"{d} × {p}: not run ({reason})")
                skipped += [{"dataset": d, "evaluation": e, "pipeline": p, "reason": reason} for e in chosen]
    order = {(d, e): k for k, (d, e, _) in enumerate(plan)}
    return sorted(plan, key=lambda c: (names_ds.index(c[0]), order[(c[0], c[1])], names_p.index(c[2]))), skipped


def _run_cell(cfg: Any, d: str, e: str, p: str, out: Path, loaded: dict) -> dict | str:
    """One cell: read back when finished earlier with the same settings, else computed and kept; or why it does
    not apply (a string)."""
    import time

    import mne

    ds, pipe = _cell_config(cfg, d, p)
    reason = _not_applicable(ds, pipe, e)
    if reason is None and e != MOABB_EVALUATION and parse_evaluation(e)[1]:
        reason = _no_covariance_step(pipe, p)
    if reason is not None:
        return reason
    seed, n_splits = int(cfg.get("seed", 42)), int(cfg.get("n_splits", 5))
    variant = pipe.get("epochs", "default")
    settings = {"dataset": {"epochs": ds["epochs"][variant], "paradigm": ds["paradigm"],
                            "moabb": ds.get("moabb") if e == MOABB_EVALUATION else None},
                "pipeline": pipe, "evaluation": e, "seed": seed, "n_splits": n_splits}
    key = _cell_hash(settings)
    path = out / "cells" / d / e / f"{p}.json"
    cell = None if cfg.get("rerun", False) else _read_cell(path, key)
    if cell is not None:
        return {**cell, "computed": False}
    t0 = time.perf_counter()
    root = Path(cfg.get("data_root") or default_data())
    with mne.utils.use_log_level("warning"):       # MNE's CSP logs each fit's rank estimation
        cell = _compute_cell(d, e, p, ds, pipe, variant, root, seed, n_splits, loaded)
    cell.update(key=key, settings=settings, seconds=round(time.perf_counter() - t0, 2))
    _write_json(path, cell)
    return {**cell, "computed": True}


def _not_for(ds: Mapping[str, Any], pipe: Mapping[str, Any]) -> str | None:
    """Why a pipeline does not apply to a dataset at all (its paradigm, or an epoching the dataset lacks)."""
    if ds["paradigm"] not in pipe["paradigms"]:
        return f"the pipeline is for {list(pipe['paradigms'])}, the dataset is {ds['paradigm']}"
    variant = pipe.get("epochs", "default")
    if variant not in ds["epochs"]:
        return f"it reads epochs {variant!r}, the dataset has {list(ds['epochs'])}"
    return None


def _not_applicable(ds: Mapping[str, Any], pipe: Mapping[str, Any], evaluation: str) -> str | None:
    variant = pipe.get("epochs", "default")
    if pipe.get("evaluations") is not None and evaluation not in pipe["evaluations"]:
        return f"the pipeline is for evaluations {list(pipe['evaluations'])}"
    if evaluation == MOABB_EVALUATION:
        if not ds.get("moabb"):
            return "no offline MOABB reader for this dataset"
        if variant != "default" or pipe.get("labels", "all") != "all":
            return "MOABB's evaluation reads MOABB's own epochs of all classes"
    return None


def _no_covariance_step(pipe: Mapping[str, Any], name: str) -> str | None:
    from neurodecode.evaluation.classification import split_at_covariances

    try:
        split_at_covariances(build_pipeline(pipe, f"pipelines.{name}"))
    except TypeError:
        return "the alignment needs a covariance step followed by more steps"
    return None


def _read_cell(path: Path, key: str) -> dict | None:
    import json

    if not path.is_file():
        return None
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        logger.warning("%s: unreadable (%s): recomputed", path, err)
        return None
    if cell.get("key") != key:
        logger.info("%s: computed with other settings: recomputed", path)
        return None
    return cell


def _write_json(path: Path, value: Any) -> None:
    from neurodecode.core.files import publish_file, temporary_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_file(path)
    tmp.write_text(dumps(value, indent=1))
    publish_file(tmp, path, overwrite=True)


def _load(ds: Mapping[str, Any], variant: str, root: Path, dataset: str, loaded: dict) -> Any:
    from neurodecode.core.configs import instantiate

    if (dataset, variant) not in loaded:
        loaded[(dataset, variant)] = instantiate(ds["epochs"][variant],
                                                 f"datasets.{dataset}: field 'epochs.{variant}'", root=str(root))
    return loaded[(dataset, variant)]


def _compute_cell(d: str, e: str, p: str, ds: Mapping[str, Any], pipe: Mapping[str, Any], variant: str,
                  root: Path, seed: int, n_splits: int, loaded: dict) -> dict:
    from neurodecode.evaluation.classification import evaluate, imbalanced

    estimator = build_pipeline(pipe, f"pipelines.{p}")
    head = {"dataset": d, "evaluation": e, "pipeline": pipe.get("name", p)}
    if e == MOABB_EVALUATION:
        return _moabb_cell(head, ds, estimator, root, seed)
    epochs = _load(ds, variant, root, d, loaded)
    if pipe.get("labels", "all") == "frequencies":
        epochs = _frequency_epochs(epochs, f"{d} × {p}")
    scheme, transfer = parse_evaluation(e)
    res = evaluate(epochs, estimator, scheme, transfer=transfer, seed=seed, n_splits=n_splits)
    sc = res.scores.rename(columns={"value": "score"}).assign(**head, source="neurodecode")
    labels = epochs.table["label"].astype(str)
    return {"scores": sc.reindex(columns=RESULT_COLUMNS).to_dict(orient="records"),
            "trials": res.trials.to_dict(orient="records"), "n_classes": int(labels.nunique()),
            "imbalanced": imbalanced(labels), "labels": sorted(labels.unique()), "epoching": epoching(epochs)}


def _moabb_cell(head: dict, ds: Mapping[str, Any], estimator: Any, root: Path, seed: int) -> dict:
    """MOABB's ``WithinSessionEvaluation`` of the pipeline on MOABB's epochs of the shared files (offline), and
    neurodecode's within-session evaluation of the same pipeline on the same epochs (5 folds, the same seed: the
    same folds as MOABB's)."""
    import importlib
    import tempfile
    import warnings

    from moabb.evaluations import WithinSessionEvaluation

    from neurodecode.core.configs import instantiate
    from neurodecode.evaluation.classification import evaluate
    from neurodecode.loaders.moabb import from_moabb

    spec = ds["moabb"]
    module, _, fn = MOABB_READERS[spec["reader"]].rpartition(".")
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        # MOABB's reader sets the montage under MNE's old name (a FutureWarning per file, nothing to act on here)
        warnings.filterwarnings("ignore", message=".*standard_1005.*", category=FutureWarning)
        dataset = getattr(importlib.import_module(module), fn)(root, folder, list(spec["subjects"]))
        paradigm = instantiate(spec["paradigm"], f"datasets.{head['dataset']}: field 'moabb.paradigm'")
        theirs = WithinSessionEvaluation(paradigm=paradigm, datasets=[dataset], random_state=seed, overwrite=True,
                                         hdf5_path=f"{folder}/results", save_model=False).process(
            {head["pipeline"]: estimator})
        epochs = from_moabb(dataset, paradigm)
        ours = evaluate(epochs, estimator, "within_session", seed=seed, n_splits=5)
    metric = str(paradigm.scoring)
    moabb_rows = pd.DataFrame({"subject": theirs["subject"].astype(str), "session": theirs["session"].astype(str),
                               "fold": -1, "n_train": np.nan, "n_test": np.nan,   # MOABB reports neither
                               "metric": metric, "score": theirs["score"].astype(float),
                               "fit_seconds": theirs["time"].astype(float), "predict_seconds": np.nan})
    mine = ours.scores.rename(columns={"value": "score"})
    sc = pd.concat([moabb_rows.assign(**head, source="moabb"), mine.assign(**head, source="neurodecode")],
                   ignore_index=True)
    labels = sorted(pd.unique(ours.trials["label"].astype(str)))
    return {"scores": sc.reindex(columns=RESULT_COLUMNS).to_dict(orient="records"), "trials": [],
            "n_classes": len(labels), "imbalanced": False, "labels": labels,
            "epoching": {**epoching(epochs), "moabb_paradigm": type(paradigm).__name__}}


def _comparisons(results: dict, base_name: str | None, seed: int) -> pd.DataFrame:
    """Each pipeline minus the baseline, per dataset and evaluation, on the same test trials (trial-level for the
    accuracies); cells on other trials (another label set) are not compared."""
    from neurodecode.evaluation.classification import EvaluationResult, compare_evaluations

    frames = []
    for (d, e, p), cell in results.items():
        base = results.get((d, e, base_name))
        if base is None or p == base_name or e == MOABB_EVALUATION:
            continue
        mine, theirs = (pd.DataFrame(c["trials"]) for c in (cell, base))
        keys = ["scheme", "subject", "session", "fold", "trial", "label"]
        if len(mine) != len(theirs) or not mine[keys].astype(str).equals(theirs[keys].astype(str)):
            logger.info("%s × %s: %s is scored on other trials than %s (labels %s): not compared", d, e, p,
                        base_name, cell["labels"])
            continue

        def result(c: dict) -> EvaluationResult:
            sc = pd.DataFrame(c["scores"]).rename(columns={"score": "value"})
            sc["scheme"] = pd.DataFrame(c["trials"])["scheme"].iloc[0]
            sc["test"] = sc["fold"].astype(str)
            return EvaluationResult(sc, trials=pd.DataFrame(c["trials"]))

        cmp = compare_evaluations(result(cell), result(base), names=(cell["scores"][0]["pipeline"],
                                                                      base["scores"][0]["pipeline"]), seed=seed)
        frames.append(cmp.assign(dataset=d, evaluation=e))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _write_outputs(result: BenchmarkResult, cfg: Any, out: Path, datasets: Sequence[str], log: Any) -> None:
    from omegaconf import OmegaConf

    result.scores.to_csv(out / "results.csv", index=False)
    record = {"benchmark": "neurodecode benchmark", "command": " ".join(sys.argv), "machine": machine(),
              "config": OmegaConf.to_container(cfg, resolve=False), "cells": result.cells,
              "summary": result.summary.to_dict(orient="records"),
              "subjects": result.subjects.to_dict(orient="records"),
              "comparisons": result.comparisons.to_dict(orient="records"), "skipped": result.skipped}
    _write_json(out / "results.json", record)
    lines = [f"# neurodecode benchmark ({len(result.cells)} cells)", ""]
    for d in datasets:
        table = result.table(d)
        if not table:
            continue
        result.plot(d, out / f"{d}.png")
        lines += [f"## {d}", "", table, ""]
        cmp = result.comparisons
        if len(cmp):
            for r in cmp[(cmp["dataset"] == d) & cmp["metric"].isin(["accuracy", "balanced_accuracy"])].itertuples():
                if r.metric == _headline(result.summary[result.summary["dataset"] == d]):
                    lines.append(f"- {r.evaluation}: {r.pipeline} − {r.baseline_name} {r.difference:+.3f} "
                                 f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}], p = {r.p_value:.2g} "
                                 f"({int(r.n_items)} paired {r.unit})")
            lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    log(f"wrote {out / 'results.csv'}, results.json, summary.md and a figure per dataset")
