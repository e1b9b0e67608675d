"""The ``neurodecode`` command line: one subcommand per job, each a thin layer over the Python API.

Subcommands parse their arguments and call the stage that does the work; errors are one line naming the file and
the field (``NEURODECODE_DEBUG=1`` shows the traceback); ``--verbose`` / ``--quiet`` set the ``neurodecode`` logger's
level. ``neurodecode train`` is Hydra's own command line (:mod:`neurodecode.cli.train`).

May import: every stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from neurodecode._version import __version__
from neurodecode.core.logs import set_log_level

__all__ = ["build_parser", "main"]


def _kv(items: Sequence[str], what: str) -> dict:
    """``KEY=VALUE`` items as a dict (OmegaConf dot-list values: numbers, lists, booleans)."""
    from omegaconf import OmegaConf

    bad = [i for i in items if "=" not in i]
    if bad:
        raise ValueError(f"field '{what}': expected KEY=VALUE items, got {bad}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(list(items)))


#: ``neurodecode.evaluation.classification.SCHEMES``, spelled here so that ``--help`` imports no scikit-learn
EVALUATION_SCHEMES = ("within_session", "within_subject", "cross_session", "cross_subject")

#: the commands that take KEY=VALUE overrides (besides ``train`` and ``example``, whose parsers are Hydra's / their own)
OVERRIDABLE = ("features", "pretrain", "adapt", "evaluate")


def _split_overrides(args: argparse.Namespace) -> None:
    """The one override syntax of every command: positional ``KEY=VALUE`` items, ``trainer.KEY=VALUE`` for the
    Trainer. The 0.2 options ``-p KEY=VALUE`` / ``-t KEY=VALUE`` still work for one release, with a warning; this
    sets ``args.overrides`` (config overrides) and ``args.trainer`` (Trainer settings, ``KEY=VALUE``)."""
    import warnings

    items = list(getattr(args, "overrides", None) or [])
    old_p, old_t = list(getattr(args, "old_params", None) or []), list(getattr(args, "old_trainer", None) or [])
    if old_p or old_t:
        spelled = " ".join([*(f"{o}" for o in old_p), *(f"trainer.{o}" for o in old_t)])
        warnings.warn(f"-p/--param and -t/--trainer are deprecated; write the overrides after the command's "
                      f"arguments: {spelled}", FutureWarning, stacklevel=3)
    items += old_p
    args.trainer = old_t + [i.split(".", 1)[1] for i in items if i.startswith("trainer.")]
    args.overrides = [i for i in items if not i.startswith("trainer.")]


def _cmd_example(args: argparse.Namespace) -> int:
    from neurodecode.cli.example import run_example

    run_example(args.overrides)
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from neurodecode.core.storage import CollectionStore, open_store

    with open_store(args.path) as store:
        stores = dict(store.items()) if isinstance(store, CollectionStore) else {"": store}
        kind = f"collection of {len(stores)} subject(s)" if isinstance(store, CollectionStore) else "epochs"
        print(f"{args.path}: {kind}")
        for subject, st in stores.items():
            n, c, t = st.shape
            head = f"[{subject}] " if subject else ""
            print(f"{head}{n} epochs × {c} channels × {t} times, {st.sfreq:g} Hz, tmin {st.tmin:g} s, "
                  f"{st.chunk_epochs} epoch(s)/chunk")
            print(f"  {st.channels!r}")
            print(f"  provenance: {[step.get('step') for step in st.provenance]}")
            print(f"  table columns: {list(st.table.columns)}")
            if args.table:
                print(st.table.head(args.table).to_string())
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from neurodecode.core.storage import load
    from neurodecode.encoders.features import extract_features, load_recipe_config

    epochs = load(args.path, args.subject)
    if not hasattr(epochs, "channels"):
        raise ValueError(f"{args.path}: field 'subject': expected one of {list(epochs)} (this file is a collection); "
                         "choose one with --subject")
    params = load_recipe_config(args.recipe, args.overrides, sfreq=epochs.sfreq)
    name = params.pop("name")
    feats = extract_features(epochs, name, **params)
    feats.save(args.out)
    print(f"{args.out}: {feats.X.shape[0]} epochs × {feats.X.shape[1]} features ({name}) + "
          f"{len(feats.table.columns)} table columns")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:  # only reached for --help (main() hands the rest to Hydra)
    return 0


def _cmd_reconstruct(args: argparse.Namespace) -> int:
    from neurodecode.evaluation.scoring import format_scores
    from neurodecode.pipeline.decoding import reconstruct

    res = reconstruct(args.checkpoint, args.recordings, args.out, heads=args.heads, subject=args.subject,
                      query=args.query, n_samples=args.n_samples, steps=args.steps, strength=args.strength,
                      brain_scale=args.brain_scale, seed=args.seed, device=args.device,
                      batch_size=args.batch_size, progress=not args.no_progress, overwrite=args.overwrite)
    print("\n".join(format_scores(res["scores"])))
    print(f"{res['n_trials']} trial(s) decoded in {res['seconds']:.1f} s → {res['report']}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from neurodecode.cli.demo import run_demo

    run_demo(args.out, args.overrides, progress=not args.no_progress, overwrite=args.overwrite)
    return 0


def _cmd_data(args: argparse.Namespace) -> int:
    from neurodecode.loaders.manifests import describe_manifest, fetch_dataset, list_manifests

    if args.action == "list":
        for m in list_manifests():
            print(f"{m['name']:<14} {m.get('modality', ''):<12} {m.get('title', '')}")
        return 0
    if args.name is None:
        raise ValueError(f"neurodecode data {args.action}: field 'name': expected a data set name (see "
                         "`neurodecode data list`), got none")
    if args.action == "info":
        print(describe_manifest(args.name))
        return 0
    paths = fetch_dataset(args.name, args.files, dest=args.dest)
    print(f"{len(paths)} file(s) of {args.name} ready in {paths[0].parent if paths else args.dest}")
    return 0


def _cmd_pretrain(args: argparse.Namespace) -> int:
    import torch

    from neurodecode.core.configs import build
    from neurodecode.core.storage import EpochStore
    from neurodecode.encoders.pretraining import pretrain

    source = EpochStore(args.path, args.subject)
    # the library's defaults (PRETRAIN_TRAINER), a progress bar, and the command's checkpoint folder
    trainer = {"progress": True, **_kv(args.trainer, "trainer"), "checkpoint_dir": args.out,
               "checkpoint_every": args.checkpoint_every}
    torch.manual_seed(args.seed)
    model = build("encoder", args.encoder, args.overrides)
    res = pretrain(source, model, trainer=trainer, val_fraction=args.val_fraction, seed=args.seed,
                   type_map=_kv(args.type_map, "type_map") or None, missing_positions=args.missing_positions,
                   resume=args.resume)
    print(f"{args.out}: {type(res.model).__name__} pretrained on {len(res.train_indices)} epochs of {args.path}; "
          f"held-out masked-reconstruction error {res.val_error_before:.4f} (epoch 0) → {res.val_error_after:.4f}")
    if args.probe_epochs > 0:
        torch.manual_seed(args.seed)                  # the same network as before pretraining: the control
        _print_probe(source, res.model, build("encoder", args.encoder, args.overrides), args)
    return 0


def _print_probe(source: Any, model: Any, untrained: Any, args: argparse.Namespace) -> None:
    """Linear probes of the pretrained and the untrained encoder beside the plain recipe, on labelled epochs of the
    store (up to ``--probe-epochs``, a seeded stratified sample); ``probe.json`` in ``--out``; a warning when
    pretraining beats neither."""
    import json

    import numpy as np

    from neurodecode.core.logs import logger
    from neurodecode.core.persistence import dumps
    from neurodecode.encoders.pretraining import probe_comparison
    from neurodecode.core.scores import paired_difference

    labels = source.table["label"] if "label" in source.table.columns else None
    if labels is None or labels.isna().any() or labels.nunique() < 2 or labels.value_counts().min() < 5:
        print("no probe: the store has no 'label' column with ≥ 2 classes of ≥ 5 epochs (--probe-epochs 0 skips it)")
        return
    index = np.arange(len(labels))
    if len(index) > args.probe_epochs:
        from sklearn.model_selection import train_test_split

        index = np.sort(train_test_split(index, train_size=args.probe_epochs, stratify=labels.astype(str),
                                         random_state=args.seed)[0])
    epochs = source.load(index)
    folds = probe_comparison(model, epochs, untrained=untrained, device=None)
    for name, v in folds.items():
        print(f"probe ({len(index)} labelled epochs, 5-fold balanced accuracy): {name:<22} {v.mean():.3f} ± "
              f"{v.std():.3f}")
    rows, beats = {}, []
    for other in [k for k in folds if k != "pretrained"]:
        d = paired_difference(folds["pretrained"], folds[other])
        rows[other] = d
        beats.append(d["ci_low"] > 0)
        print(f"  pretrained − {other}: {d['difference']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] "
              f"(paired over folds, p = {d['p_value']:.3g})")
    (Path(args.out) / "probe.json").write_text(dumps({"folds": {k: v.tolist() for k, v in folds.items()},
                                                      "comparison": rows}, indent=1))
    if not all(beats):
        logger.warning("pretraining does not beat " + " and ".join(k for k, b in zip(rows, beats) if not b)
                       + " on the probe: " + json.dumps({k: round(float(v.mean()), 3) for k, v in folds.items()}))


def _cmd_adapt(args: argparse.Namespace) -> int:
    from neurodecode.alignment.adaptation import adapt_from_stores
    from neurodecode.encoders.models.subjects import CrossSubjectModel
    from neurodecode.encoders.pretraining import load_model, save_model

    model = load_model(args.model)
    if not isinstance(model, CrossSubjectModel):
        raise ValueError(f"{args.model}: field 'config.model': expected a CrossSubjectModel checkpoint, got "
                         f"{type(model).__name__}")
    references = dict(item.partition("=")[::2] for item in args.reference)
    if args.targets and args.check > 0:
        _print_adaptation_check(model, args, references)
    elif args.check > 0:
        print("no --targets: the adapted model cannot be compared with ridge from scratch on the same trials")
    model, shape = adapt_from_stores(model, args.path, args.name, method=args.method, references=references,
                                     targets=args.targets, trainer=_kv(args.trainer, "trainer"), subject=args.subject)
    save_model(args.out, model, overwrite=args.overwrite)
    print(f"{args.out}: {type(model).__name__} with subjects {model.subjects} (added {args.name!r} from "
          f"{shape[0]} trials × {shape[1]} inputs by {args.method})")
    return 0


def _print_adaptation_check(model: Any, args: argparse.Namespace, references: dict) -> None:
    """Adapted vs ridge from scratch on the same trials (held-out stimuli of the new subject); a warning when the
    adapted model does not predict them better."""
    from neurodecode.alignment.adaptation import check_from_stores
    from neurodecode.core.logs import logger
    from neurodecode.core.scores import paired_difference

    res = check_from_stores(model, args.path, args.name, args.targets, method=args.method, references=references,
                            trainer=_kv(args.trainer, "trainer"), subject=args.subject, fraction=args.check)
    d = paired_difference(res["ridge_errors"], res["adapted_errors"])        # > 0: the adapted model errs less
    line = (f"check ({res['n_heldout']} held-out trials, adapted on {res['n_fit']}): adapted R² "
            f"{res['adapted_r2']:.3f} vs ridge from scratch on the same trials {res['ridge_r2']:.3f}; squared error "
            f"reduction {d['difference']:+.3g} [{d['ci_low']:+.3g}, {d['ci_high']:+.3g}], p = {d['p_value']:.3g}")
    if res["adapted_r2"] > res["ridge_r2"] and d["ci_low"] > 0:
        print(line)
    else:
        logger.warning(f"the adapted model does not beat ridge from scratch: {line}")


def _read_outputs(path: str, kind: str) -> Any:
    """Decoded outputs or their truth from a file: .npy arrays, .txt (captions, one per line)."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file")
    if p.suffix == ".txt":
        if kind != "captions":
            raise ValueError(f"{p}: field '--kind': text files hold captions, got --kind {kind}")
        return [line.rstrip("\n") for line in p.read_text().splitlines()]
    if p.suffix != ".npy":
        raise ValueError(f"{p}: expected a .npy array (or .txt captions), got {p.suffix!r}")
    return np.load(p, allow_pickle=False)


def _write_scores(result: Any, out_dir: str | None) -> None:
    """``scores.json`` and ``scores.png`` of an EvaluationResult or Scores into ``out_dir`` (when given)."""
    if not out_dir:
        return
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.to_json(out / "scores.json")
    result.plot(out / "scores.png")
    print(f"wrote {out / 'scores.json'} and {out / 'scores.png'}")


def _cmd_evaluate(args: argparse.Namespace) -> int:
    if args.kind == "classification":
        if args.path is None:
            raise ValueError("field 'path': --kind classification evaluates a feature recipe on stored epochs; give "
                             "the store")
        from neurodecode.core.storage import load
        from neurodecode.evaluation.classification import evaluate, recipe_classifier

        epochs = load(args.path)
        sfreq = epochs.sfreq if hasattr(epochs, "sfreq") else epochs[next(iter(epochs))].sfreq
        if args.encoder:                     # a trained classifier of conf/encoder (braindecode, mvcnet, ...)
            from neurodecode.core.configs import build, load_config

            extra = [] if "sfreq" not in load_config("encoder", args.encoder) or any(
                o.startswith("sfreq=") for o in args.overrides) else [f"sfreq={sfreq}"]
            # trainer.KEY=VALUE items set the encoder config's own `trainer` mapping
            pipeline = build("encoder", args.encoder, [*args.overrides, *(f"trainer.{t}" for t in args.trainer),
                                                       *extra])
            if not (hasattr(pipeline, "fit") and hasattr(pipeline, "predict") and hasattr(pipeline, "get_params")):
                raise ValueError(f"field '--encoder': expected a classifier (an estimator with fit/predict, such as "
                                 f"braindecode, eegnet or mvcnet), got {args.encoder!r}, which builds "
                                 f"a {type(pipeline).__name__} (a feature encoder: fine-tune it with "
                                 "neurodecode.encoders.FineTunedEncoder)")
            name = f"{args.encoder} ({type(pipeline).__name__}" + (
                f" {pipeline.model})" if isinstance(getattr(pipeline, "model", None), str) else ")")
        defaults = _paradigm_defaults(epochs, args)
        recipe, recipe_overrides = ((defaults.recipe, [*defaults.overrides, *args.overrides])
                                    if args.recipe == "auto" else (args.recipe, list(args.overrides)))
        weight = defaults.class_weight if defaults is not None else None
        if not args.encoder:
            if args.trainer:
                raise ValueError(f"field 'trainer.{args.trainer[0].split('=')[0]}': Trainer settings apply to a "
                                 f"trained classifier (--encoder), not to the feature recipe {recipe!r}")
            pipeline = recipe_classifier(recipe, recipe_overrides, sfreq=sfreq, C=args.C, class_weight=weight)
            name = f"{recipe} + LR"
        base, base_overrides = ((defaults.recipe, list(defaults.overrides)) if args.baseline == "auto"
                                else (args.baseline, []))
        same = not args.encoder and base == recipe and base_overrides == recipe_overrides
        baseline = None if base in ("none", "") or same else recipe_classifier(base, base_overrides, sfreq=sfreq,
                                                                               C=args.C, class_weight=weight)
        result = evaluate(epochs, pipeline, args.scheme, target=args.target, n_splits=args.n_splits, seed=args.seed,
                          recenter=args.recenter, transfer=args.transfer, n_calibration=args.n_calibration,
                          baseline=baseline, baseline_name=f"baseline: {base} + LR", name=name)
        print(f"{name}:")
        print(result.summary().round(3).to_string())
        _print_baseline(result, recipe if same else None)
        _write_scores(result, args.out)
        return 0
    from neurodecode.evaluation.metrics import score_outputs

    if args.pred is None or args.true is None:
        raise ValueError(f"field '--pred'/'--true': --kind {args.kind} scores decoded outputs against the truth; "
                         "give both files")
    options = {}
    if args.kind == "retrieval":
        options = {"k": args.k, "pool_size": args.pool_size or None, "n_repeats": args.n_repeats}
    scores = score_outputs(args.kind, _read_outputs(args.pred, args.kind), _read_outputs(args.true, args.kind),
                           seed=args.seed, **options)
    print(scores.table.round(4).to_string(index=False))
    _write_scores(scores, args.out)
    return 0


def _paradigm_defaults(epochs: Any, args: argparse.Namespace) -> Any:
    """The paradigm's defaults when --recipe or --baseline is ``auto`` (printed with what they were read from)."""
    from neurodecode.evaluation.classification import paradigm_defaults

    if "auto" not in (args.recipe, args.baseline):
        return None
    d = paradigm_defaults(epochs, args.target)
    print(f"paradigm: {d.paradigm} ({d.reason}) → recipe {d.recipe}" + (f" {' '.join(d.overrides)}" if d.overrides
                                                                          else "") +
          (f"; classes imbalanced: class weights balanced, read {d.metric} and roc_auc, not accuracy"
           if d.class_weight else ""))
    return d


def _print_baseline(result: Any, same: str | None) -> None:
    """The plain baseline's summary and the paired comparison; a warning line when the recipe does not beat it."""
    from neurodecode.core.logs import logger
    from neurodecode.evaluation.classification import evaluation_verdict
    from neurodecode.core.scores import format_comparison

    if same is not None:
        print(f"the recipe is the plain baseline ({same} + logistic regression): nothing to compare")
        return
    if result.baseline is None:
        return
    print(f"{result.comparison['baseline_name'].iloc[0] if len(result.comparison) else 'baseline'}:")
    print(result.baseline.summary().round(3).to_string())
    for line in format_comparison(result.comparison):
        print(f"vs baseline: {line}")
    if len(result.comparison):
        beats, line = evaluation_verdict(result.comparison)
        (print if beats else logger.warning)(line)


def _add_example(sub: Any) -> None:
    ex = sub.add_parser("example", help="run the built-in example (real EEG → epoch store → decoding)",
                        description="Run the built-in example: PhysioNet EEGMMIDB subject 1, imagined left vs "
                                    "right fist → epoch store → torch Dataset → OAS + tangent space + LR.")
    ex.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="override conf/example/eegmmidb_imagery.yaml, e.g. out_dir=/tmp/ex band=[8,30]")
    ex.set_defaults(func=_cmd_example)


def _add_features(sub: Any) -> None:
    feats = sub.add_parser("features", help="compute a feature recipe on a stored epoch file → Parquet/CSV",
                           description="Compute Riemannian features (conf/features/<recipe>.yaml) on a stored epoch "
                                       "file and write them with the per-epoch table as Parquet or CSV.")
    feats.add_argument("path", help="epoch store (.h5) written by neurodecode")
    feats.add_argument("--recipe", default="tangent_space",
                       help="tangent_space, augmented_tangent_space, filterbank_tangent_space or covariance")
    feats.add_argument("--out", required=True, help="output file, .parquet or .csv")
    feats.add_argument("--subject", default=None, help="subject to use in a collection file")
    feats.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="recipe parameters (conf/features/<recipe>.yaml), e.g. estimator=lwf "
                            "'bands=[[8,12],[12,30]]'")
    feats.add_argument("--param", "-p", dest="old_params", action="append", default=[], help=argparse.SUPPRESS)
    feats.set_defaults(func=_cmd_features)


def _add_pretrain(sub: Any) -> None:
    pre = sub.add_parser("pretrain", help="masked-autoencoder pretraining of an encoder on a stored epoch file",
                         description="Pretrain an encoder (conf/encoder/<name>.yaml) as a masked autoencoder on the "
                                     "epochs of a store; checkpoints (safetensors + config) go to --out, which "
                                     "neurodecode.encoders.load_model(OUT) rebuilds; --resume continues a killed run.")
    pre.add_argument("path", help="epoch store (.h5) written by neurodecode (read lazily)")
    pre.add_argument("--encoder", default="mae_eeg", help="encoder config name or YAML path (default mae_eeg)")
    pre.add_argument("--out", required=True, help="checkpoint folder")
    pre.add_argument("--subject", default=None, help="subject to use in a collection file")
    pre.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                     help="encoder config overrides and trainer.KEY=VALUE Trainer settings, e.g. mask=time "
                          "encoder.depth=2 trainer.max_epochs=50 trainer.device=cuda trainer.precision=bf16-mixed")
    pre.add_argument("--param", "-p", dest="old_params", action="append", default=[], help=argparse.SUPPRESS)
    pre.add_argument("--trainer", "-t", dest="old_trainer", action="append", default=[], help=argparse.SUPPRESS)
    pre.add_argument("--type-map", action="append", default=[], metavar="TYPE=TYPE",
                     help="read channels of one type as another, e.g. ecog=seeg")
    pre.add_argument("--missing-positions", default="error", choices=["error", "learned"])
    pre.add_argument("--val-fraction", type=float, default=0.1)
    pre.add_argument("--checkpoint-every", type=int, default=None, metavar="STEPS")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--probe-epochs", type=int, default=2000, metavar="N",
                     help="after pretraining, probe it on up to N labelled epochs of the store beside the untrained "
                          "network and tangent_space + LR (0: skip)")
    pre.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    pre.set_defaults(func=_cmd_pretrain)


def _add_adapt(sub: Any) -> None:
    ad = sub.add_parser("adapt", help="add a new subject to a cross-subject model (ridge or reset-tuning)",
                        description="Add a subject with any voxel count to a trained CrossSubjectModel: closed-form "
                                    "ridge onto the shared-space latents that trained subjects give the same stimuli "
                                    "(--reference), or reset-tuning of the new subject's layers on targets.")
    ad.add_argument("model", help="checkpoint folder of a CrossSubjectModel")
    ad.add_argument("path", help="the new subject's single-trial epochs (n_trials, n_voxels, 1) with stimulus ids")
    ad.add_argument("--name", required=True, help="the new subject's name")
    ad.add_argument("--method", choices=["ridge", "reset"], default="ridge")
    ad.add_argument("--reference", action="append", default=[], metavar="SUBJECT=STORE",
                    help="a trained subject's single-trial epochs (repeatable; for --method ridge)")
    ad.add_argument("--targets", default=None, help="FILE.npz with arrays 'stimulus' and 'target' (--method reset)")
    ad.add_argument("overrides", nargs="*", metavar="trainer.KEY=VALUE",
                    help="Trainer settings for reset-tuning, e.g. trainer.max_epochs=300")
    ad.add_argument("--trainer", "-t", dest="old_trainer", action="append", default=[], help=argparse.SUPPRESS)
    ad.add_argument("--subject", default=None, help="subject to use when PATH is a collection file")
    ad.add_argument("--check", type=float, default=0.2, metavar="FRACTION",
                    help="with --targets: hold out this fraction of the new subject's stimuli, adapt a copy on the "
                         "rest and compare with ridge from scratch on the same trials (0: skip)")
    ad.add_argument("--out", required=True, help="checkpoint folder for the adapted model")
    ad.add_argument("--overwrite", action="store_true")
    ad.set_defaults(func=_cmd_adapt)


def _add_evaluate(sub: Any) -> None:
    ev = sub.add_parser("evaluate", help="the evaluation harness: decoding on stored epochs, or decoded outputs",
                        description="--kind classification: a feature recipe + logistic regression on a stored epoch "
                                    "file, MOABB-style (within_session, within_subject, cross_session, cross_subject). --kind "
                                    "retrieval|images|captions|meshes: decoded outputs (--pred) against the truth "
                                    "(--true), .npy arrays or .txt captions. Seeded; JSON and a plot with --out.")
    ev.add_argument("path", nargs="?", default=None, help="epoch store (.h5), for --kind classification")
    ev.add_argument("--kind", default="classification",
                    choices=["classification", "retrieval", "images", "captions", "meshes"])
    ev.add_argument("--recipe", default="auto",
                    help="feature recipe (conf/features); auto: the paradigm's (xdawn_tangent_space for ERPs, "
                         "tangent_space otherwise), read or inferred from the epochs and printed")
    ev.add_argument("--encoder", default=None,
                    help="instead of --recipe + LR, a classifier of conf/encoder, e.g. braindecode (with "
                         "model=EEGNet), eegnet, shallow_fbcsp, atcnet, eeg_conformer, mvcnet; KEY=VALUE overrides "
                         "then apply to it")
    ev.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="recipe parameters (conf/features/<recipe>.yaml), e.g. estimator=lwf")
    ev.add_argument("--param", "-p", dest="old_params", action="append", default=[], help=argparse.SUPPRESS)
    ev.add_argument("--scheme", default="within_session", choices=EVALUATION_SCHEMES,
                    help="within_session (k-fold per subject × session), within_subject (sessions pooled), "
                         "cross_session, cross_subject")
    ev.add_argument("--target", default="label", help="table column with the classes")
    ev.add_argument("--n-splits", type=int, default=5)
    ev.add_argument("--C", type=float, default=1.0, help="inverse regularisation of the logistic regression")
    ev.add_argument("--recenter", action="store_true", help="re-centre each subject/session (= --transfer recenter)")
    ev.add_argument("--transfer", default=None, choices=["recenter", "rpa", "procrustes"],
                    help="align subjects (cross_subject) or sessions (cross_session) after the covariances")
    ev.add_argument("--baseline", default="auto",
                    help="the plain recipe evaluated on the same folds beside --recipe (auto: the paradigm's; "
                         "none: skip)")
    ev.add_argument("--n-calibration", type=int, default=0,
                    help="labelled trials per class of the test subject/session used to align and train (rpa, "
                         "procrustes)")
    ev.add_argument("--pred", default=None, help="decoded outputs: .npy (n_items, ...) or .txt captions")
    ev.add_argument("--true", default=None, help="their truth, same format")
    ev.add_argument("--k", type=int, nargs="+", default=[1, 5], help="top-k for retrieval")
    ev.add_argument("--pool-size", type=int, default=300, help="candidates per pool (0: all items)")
    ev.add_argument("--n-repeats", type=int, default=30)
    ev.add_argument("--seed", type=int, default=42)
    ev.add_argument("--out", default=None, help="folder for scores.json and scores.png")
    ev.set_defaults(func=_cmd_evaluate)


def _add_train(sub: Any) -> None:
    tr = sub.add_parser("train", help="a Hydra training run: data → encoder → aligner → heads → checkpoint",
                        description="Compose conf/train.yaml from the groups " + ", ".join(_GROUPS) + " and run it "
                                    "(neurodecode.cli.train). Everything after 'train' is Hydra's command line: "
                                    "group=option, key=value, +new_key=value, --multirun, --cfg job, "
                                    "hydra/launcher=submitit_slurm. Outputs go to runs/<name>/<time>/: "
                                    "config.yaml, metrics.json, heldout_epochs.h5, checkpoint/.",
                        epilog=_train_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=demo aligner=mlp seed=1")
    tr.set_defaults(func=_cmd_train)


def _add_reconstruct(sub: Any) -> None:
    rec = sub.add_parser("reconstruct", help="decode a subject's recordings with a trained checkpoint + HTML report",
                         description="Read recordings with the checkpoint's data recipe (or an epoch store), check "
                                     "them against its input contract, encode, align, run its heads (images, "
                                     "captions, meshes) and retrieval, score against the stimuli when known, and "
                                     "write per-trial outputs and a self-contained report.html into --out.")
    rec.add_argument("checkpoint", help="folder written by neurodecode train (<run>/checkpoint)")
    rec.add_argument("recordings", nargs="+", help="an epoch store (.h5) or the raw files the data recipe reads")
    rec.add_argument("--out", required=True, help="output folder (report.html, images/, captions/, ...)")
    rec.add_argument("--heads", nargs="+", default=None, choices=["images", "captions", "meshes", "retrieval"],
                     help="outputs to make (default: all the checkpoint has)")
    rec.add_argument("--subject", default=None, help="subject to use in a collection store")
    rec.add_argument("--query", default=None, help="table query selecting trials, e.g. \"split == 'test'\"")
    rec.add_argument("--n-samples", type=int, default=None, help="image samples per trial")
    rec.add_argument("--steps", type=int, default=None, help="diffusion steps")
    rec.add_argument("--strength", type=float, default=None, help="img2img strength from the low-level image")
    rec.add_argument("--brain-scale", type=float, default=None,
                     help="encoder-guided generation's weight (checkpoints trained with images.brain_guidance)")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ...")
    rec.add_argument("--batch-size", type=int, default=8)
    rec.add_argument("--no-progress", action="store_true", help="no progress bars")
    rec.add_argument("--overwrite", action="store_true", help="write into a folder that holds a reconstruction")
    rec.set_defaults(func=_cmd_reconstruct)


def _cmd_stream(args: argparse.Namespace) -> int:
    import json
    import sys

    import numpy as np

    from neurodecode.pipeline.streaming import OnlineDecoder

    decoder = OnlineDecoder(args.checkpoint, args.lsl_stream, markers=args.markers, pad=args.pad,
                            bufsize=args.bufsize, outlet=args.outlet, marker_offset=args.marker_offset,
                            potato=args.potato, potato_warmup=args.potato_warmup)
    latencies, dropped = [], []
    if args.sliding is not None:            # no markers: a window every --sliding seconds (asynchronous BCI)
        preds = decoder.run_sliding(args.sliding, n_epochs=args.n_epochs, timeout=args.timeout, idle=args.idle)
    else:
        preds = decoder.run(n_epochs=args.n_epochs, timeout=args.timeout, idle=args.idle)
    for pred in preds:
        (dropped if "dropped" in pred else latencies).append(pred.get("dropped", pred.get("latency_s")))
        print(json.dumps({k: v for k, v in pred.items() if k != "latent" or args.latents}), flush=True)
    lost = ""
    if dropped:
        reasons = {r: dropped.count(r) for r in dict.fromkeys(dropped)}
        lost = f"; {len(dropped)} dropped (" + "; ".join(f"{n} × {r}" for r, n in reasons.items()) + ")"
    if latencies:
        print(f"{len(latencies)} epoch(s) decoded from {args.lsl_stream}{lost}: latency after the padded window "
              f"median {np.median(latencies):.4f} s, 95th percentile {np.percentile(latencies, 95):.4f} s (plus the "
              f"{args.pad:g} s pad)", file=sys.stderr)
    elif dropped:
        print(f"0 epoch(s) decoded from {args.lsl_stream}{lost}", file=sys.stderr)
    else:
        print(f"no labelled marker arrived on {decoder.marker_name} before the stream went quiet", file=sys.stderr)
    return 0


def _add_stream(sub: Any) -> None:
    st = sub.add_parser("stream", help="decode a live LSL stream with a trained checkpoint (mne-lsl)",
                        description="Read a live LSL stream and its marker stream, epoch it on the markers as the "
                                    "checkpoint's data recipe says (same preprocessing, on a padded stretch), decode "
                                    "each epoch and print one JSON line per prediction (and push it to --outlet).")
    st.add_argument("checkpoint", help="folder written by neurodecode train with data=meeg (<run>/checkpoint)")
    st.add_argument("--lsl-stream", required=True, help="name of the LSL signal stream")
    st.add_argument("--markers", default=None, help="name of the LSL marker stream (default <stream>-annotations)")
    st.add_argument("--pad", type=float, default=2.0, help="seconds of signal on each side of the window (filters)")
    st.add_argument("--bufsize", type=float, default=20.0, help="seconds of signal buffered")
    st.add_argument("--outlet", default=None, help="name of an LSL outlet to push the predictions to")
    st.add_argument("--marker-offset", type=float, default=0.0,
                    help="seconds added to marker timestamps (mne-lsl's player: 1/sfreq)")
    st.add_argument("--n-epochs", type=int, default=None, help="stop after this many predictions")
    st.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the streams and a first marker")
    st.add_argument("--idle", type=float, default=5.0, help="stop after this many seconds without new data")
    st.add_argument("--latents", action="store_true", help="include each epoch's latent in the JSON lines")
    st.add_argument("--sliding", type=float, default=None, metavar="STEP",
                    help="decode without markers: a window of the checkpoint's epoch length every STEP seconds")
    st.add_argument("--potato", type=float, default=None, metavar="Z",
                    help="reject (report as dropped, not decode) epochs a Riemannian potato scores above this z")
    st.add_argument("--potato-warmup", type=int, default=10, metavar="N",
                    help="epochs that fit the potato before any is judged (default 10)")
    st.set_defaults(func=_cmd_stream)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="the built-in end-to-end example on a SIMULATED subject (offline, minutes)",
                          description="Train on a simulated fMRI subject (scikit-learn's digits through a pRF "
                                      "encoding model + noise), reconstruct its held-out trials and write "
                                      "OUT/reconstruction/report.html. Overrides go to the training config.")
    demo.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. aligner=mlp data.snr=0.3")
    demo.add_argument("--out", default="neurodecode_demo", help="output folder (default neurodecode_demo)")
    demo.add_argument("--no-progress", action="store_true")
    demo.add_argument("--overwrite", action="store_true", help="replace a previous demo in --out")
    demo.set_defaults(func=_cmd_demo)


def _add_data(sub: Any) -> None:
    data = sub.add_parser("data", help="public data sets: list, describe, fetch (checksummed, resumable)",
                          description="Dataset manifests in data_manifests/: `data list`, `data info NAME`, "
                                      "`data fetch NAME [--files GLOB ...]` (downloads with pooch into "
                                      "$NEURODECODE_CACHE/NAME or --dest, checks sha256, resumes).")
    data.add_argument("action", choices=["list", "info", "fetch"])
    data.add_argument("name", nargs="?", default=None)
    data.add_argument("--files", nargs="+", default=None, metavar="GLOB", help="only these files (glob patterns)")
    data.add_argument("--dest", default=None, help="folder to download into")
    data.set_defaults(func=_cmd_data)


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from neurodecode.core.configs import compose
    from neurodecode.evaluation.benchmarks import run_benchmark

    overrides = list(args.overrides)
    if args.data is not None:
        overrides.append(f"data_root={args.data}")
    if args.out is not None:
        overrides.append(f"out_dir={args.out}")
    if args.rerun:
        overrides.append("rerun=true")
    cfg = compose(overrides, config_name="benchmark")
    if args.cfg:
        from omegaconf import OmegaConf

        print(OmegaConf.to_yaml(cfg, resolve=False))
        return 0
    result = run_benchmark(cfg, datasets=args.datasets, pipelines=args.pipelines, evaluations=args.evaluations,
                           log=lambda line: print(line, flush=True))
    for dataset in dict.fromkeys(result.summary["dataset"]) if len(result.summary) else []:
        print(f"\n{dataset}\n{result.table(dataset)}")
    return 0


def _add_benchmark(sub: Any) -> None:
    bm = sub.add_parser(
        "benchmark", help="datasets × pipelines × evaluations on the shared recordings → results table + figures",
        description="Run every dataset × pipeline × evaluation cell of conf/benchmark.yaml (datasets of "
                    "conf/dataset, pipelines of conf/pipeline; evaluations: within-session/subject, cross-session, "
                    "cross-subject with or without alignment, MOABB's own) and write results.csv, results.json, "
                    "summary.md and a figure per dataset. A finished cell is read back, not recomputed, when the "
                    "command runs again with the same settings. About 20 minutes on 2 CPU cores by default.",
        epilog="examples:\n  neurodecode benchmark --datasets ssvep_exo --pipelines ts_lr cca\n"
               "  neurodecode benchmark +pipeline@pipelines.eegnet=eegnet --evaluations cross_subject\n"
               "  neurodecode benchmark 'datasets.eegmmidb.epochs.default.subjects=[S001,S002]'",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    bm.add_argument("overrides", nargs="*", metavar="OVERRIDE",
                    help="Hydra overrides of conf/benchmark.yaml (key=value, +group@key=option, ~group@key)")
    bm.add_argument("--datasets", nargs="+", default=None, help="run these datasets of the config only")
    bm.add_argument("--pipelines", nargs="+", default=None, help="run these pipelines of the config only")
    bm.add_argument("--evaluations", nargs="+", default=None,
                    help="run these evaluations only (e.g. within_session cross_subject+recenter)")
    bm.add_argument("--data", default=None, help="folder of the shared recordings (= data_root=...)")
    bm.add_argument("--out", default=None, help="results folder (= out_dir=...; default benchmark_results)")
    bm.add_argument("--rerun", action="store_true", help="recompute finished cells too (= rerun=true)")
    bm.add_argument("--cfg", action="store_true", help="print the composed config and stop")
    bm.set_defaults(func=_cmd_benchmark)


def _add_info(sub: Any) -> None:
    info = sub.add_parser("info", help="describe a stored epoch file", description="Describe an epoch store "
                          "(shape, channels, provenance, table) without loading its data.")
    info.add_argument("path")
    info.add_argument("--table", type=int, default=0, metavar="N", help="also print the first N table rows")
    info.set_defaults(func=_cmd_info)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``neurodecode`` (one subparser per command)."""
    parser = argparse.ArgumentParser(
        prog="neurodecode",
        description="Decode fMRI, EEG, MEG and sEEG recordings into classes, retrieved stimuli, images, captions "
                    "and 3D objects.")
    parser.add_argument("--version", action="version", version=f"neurodecode {__version__}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("--verbose", "-v", action="store_true", help="log debugging details")
    loud.add_argument("--quiet", "-q", action="store_true", help="log warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_example, _add_features, _add_pretrain, _add_adapt, _add_evaluate, _add_benchmark, _add_train,
                _add_reconstruct, _add_stream, _add_demo, _add_data, _add_info):
        add(sub)
    return parser


_GROUPS = ["data", "preprocessing", "encoder", "objective", "aligner", "head", "trainer", "experiment"]


def _train_epilog() -> str:
    from neurodecode.core.configs import options

    lines = ["config groups and their options (conf/<group>/<option>.yaml):"]
    for g in _GROUPS:
        lines.append(f"  {g:<14} " + ", ".join(options(g)))
    lines.append("head fills three slots: head@heads.images=..., head@heads.captions=..., head@heads.meshes=...")
    return "\n".join(lines)


def _log_level(argv: list[str]) -> list[str]:
    """Apply and remove the global ``--verbose``/``--quiet`` flags placed before the command."""
    rest = list(argv)
    while rest and rest[0] in ("-v", "--verbose", "-q", "--quiet"):
        set_log_level("debug" if rest.pop(0) in ("-v", "--verbose") else "warning")
    return rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurodecode`` command."""
    argv = _log_level(list(sys.argv[1:] if argv is None else argv))
    if argv and argv[0] == "train" and not {"-h", "--help"} & set(argv[1:]):
        from neurodecode.cli.train import main as train_main

        return train_main(argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command in OVERRIDABLE:                 # KEY=VALUE items may sit anywhere after the command
        args.overrides = list(getattr(args, "overrides", None) or []) + [
            x for x in extra if "=" in x and not x.startswith("-")]
        extra = [x for x in extra if "=" not in x or x.startswith("-")]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in OVERRIDABLE:
        _split_overrides(args)
        if args.command == "features" and args.trainer:     # never silently ignored
            parser.error(f"field 'trainer.{args.trainer[0].split('=')[0]}': `neurodecode features` trains "
                         "nothing; Trainer settings apply to pretrain, adapt and evaluate --encoder")
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, OSError, RuntimeError) as err:   # OSError: missing files, offline
        if os.environ.get("NEURODECODE_DEBUG"):
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"neurodecode {args.command}: error: {message} (NEURODECODE_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
