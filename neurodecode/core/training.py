"""A small plain-torch trainer: one process or DDP, gradient accumulation, mixed precision, safetensors checkpoints.

:class:`Trainer` fits any ``nn.Module`` with an *objective* — a callable ``objective(model, batch) -> loss`` (a
scalar tensor, or a dict with a ``"loss"`` entry and other scalars to log). What makes it worth having instead of a
bare loop:

* **The same result on 1 or N processes.** Each optimiser step draws one *global* batch of ``batch_size`` indices
  from a permutation seeded by ``(seed, epoch)``; with a process group initialised (``torchrun``, or
  ``torch.distributed.init_process_group`` with gloo on CPU / nccl on GPU) process r takes its contiguous share, DDP
  averages the gradients, and the contrastive losses of :mod:`neurodecode.encoders.models.contrastive` gather their negatives across
  processes — so 2 processes give the weights of 1 process on the same global batch (tested with gloo).
* **Resumable after a kill.** Every ``checkpoint_every`` optimiser steps (and at the end of each epoch) the model,
  optimiser and random states are written atomically as safetensors + JSON (no pickle); ``fit(..., resume=True)``
  continues from the last one, mid-epoch, and ends with the weights of an uninterrupted run (tested with SIGKILL).
* Gradient accumulation (``accumulate`` micro-batches per step), ``precision="bf16-mixed"`` (CPU or GPU) or
  ``"16-mixed"`` (CUDA, with a gradient scaler), gradient clipping, cosine or constant learning rate.

Checkpoint folder layout: ``model.safetensors``, ``optimizer.safetensors``, ``checkpoint.json`` (model config, trainer
state, optimiser hyper-parameters) and ``metrics.jsonl`` (one line per epoch).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodecode.core.persistence import dumps

__all__ = ["Trainer", "load_checkpoint", "save_checkpoint"]

PRECISIONS = ("32", "bf16-mixed", "16-mixed")


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _dist() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (for safetensors) and the JSON-able rest."""
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        meta["state"][str(pid)] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{pid}.{name}"] = value.detach().cpu().contiguous()
                meta["state"][str(pid)][name] = "tensor"
            else:
                meta["state"][str(pid)][name] = value
    return tensors, meta


def _unflatten_optimizer(tensors: Mapping[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {int(pid): {name: tensors[f"{pid}.{name}"] if value == "tensor" else value
                        for name, value in entries.items()} for pid, entries in meta["state"].items()}
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(path: str | os.PathLike, model: nn.Module, config: Mapping[str, Any] | None = None, *,
                    optimizer: torch.optim.Optimizer | None = None, state: Mapping[str, Any] | None = None,
                    overwrite: bool = True) -> Path:
    """Write a checkpoint folder atomically (a temporary folder renamed into place).

    Parameters
    ----------
    path : path
        Folder to create.
    model : nn.Module
        Its ``state_dict()`` goes to ``model.safetensors``.
    config : mapping, optional
        JSON-able description needed to rebuild the model (e.g. ``{"_target_": ..., ...}``).
    optimizer : Optimizer, optional
        Its state goes to ``optimizer.safetensors`` (tensors) and ``checkpoint.json`` (the rest).
    state : mapping, optional
        Trainer state (epoch, step, random states), JSON-able.
    overwrite : bool
        Replace an existing checkpoint at ``path`` (the old one stays intact until the new one is complete; one
        writer per path at a time).
    """
    from safetensors.torch import save_file

    from neurodecode.core.files import WriteLock, publish_dir, temporary_dir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with WriteLock(path):
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path}: a checkpoint exists; pass overwrite=True to replace it")
        tmp = temporary_dir(path)
        try:
            weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            save_file(weights, tmp / "model.safetensors")
            meta: dict[str, Any] = {"format": "neurodecode-checkpoint/1", "config": dict(config or {}),
                                    "state": dict(state or {})}
            if optimizer is not None:
                tensors, meta["optimizer"] = _flatten_optimizer(optimizer.state_dict())
                save_file(tensors, tmp / "optimizer.safetensors")
            (tmp / "checkpoint.json").write_text(dumps(meta, indent=1))
            if (path / "metrics.jsonl").exists():
                shutil.copy2(path / "metrics.jsonl", tmp / "metrics.jsonl")
            publish_dir(tmp, path, overwrite=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return path


def load_checkpoint(path: str | os.PathLike, model: nn.Module | None = None,
                    optimizer: torch.optim.Optimizer | None = None, map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint folder; load the weights into ``model`` (strict) and ``optimizer`` when given.

    Returns
    -------
    dict
        ``{"config": ..., "state": ..., "weights": state dict}``.
    """
    from safetensors.torch import load_file

    path = Path(path)
    meta_file = path / "checkpoint.json"
    if not meta_file.is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}: expected a checkpoint folder with checkpoint.json and model.safetensors")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != "neurodecode-checkpoint/1":
        raise ValueError(f"{meta_file}: field 'format': expected 'neurodecode-checkpoint/1', got {meta.get('format')!r}")
    weights = load_file(path / "model.safetensors", device=map_location)
    if model is not None:
        missing, unexpected = model.load_state_dict(weights, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path / 'model.safetensors'}: weights do not match the model: missing {missing}, "
                             f"unexpected {unexpected}")
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"{meta_file}: field 'optimizer': expected an optimiser state to resume, got none")
        tensors = load_file(path / "optimizer.safetensors", device=map_location)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    return {"config": meta["config"], "state": meta["state"], "weights": weights}


@dataclass
class _Run:
    """What one ``Trainer.fit`` call works on (the model, its DDP wrapper, the optimiser) and where it stands."""

    model: nn.Module
    net: nn.Module
    objective: Callable[[nn.Module, Any], Any]
    data: Any
    device: torch.device
    params: list
    optimizer: torch.optim.Optimizer
    scaler: Any
    total_steps: int
    config: Mapping[str, Any] | None
    ckpt: Path | None
    start_epoch: int = 0
    start_step: int = 0
    global_step: int = 0


@dataclass
class Trainer:
    """Fit a model with an objective over a map-style dataset.

    Parameters
    ----------
    max_epochs : int
    batch_size : int
        Global batch per optimiser step (split across processes and ``accumulate`` micro-batches).
    lr, weight_decay : float
        AdamW hyper-parameters.
    schedule : {"cosine", "constant"}
        Learning rate per step (cosine decays to 0 over all steps, after ``warmup_steps``).
    accumulate : int
        Micro-batches per optimiser step.
    precision : {"32", "bf16-mixed", "16-mixed"}
    grad_clip : float, optional
        Max gradient norm.
    seed : int
        Seeds the batch order (per epoch) and torch's random state at the start.
    drop_last : bool
        Skip the last incomplete global batch (keeps every step's batch the same size).
    checkpoint_dir : path, optional
        Where checkpoints and ``metrics.jsonl`` go.
    checkpoint_every : int, optional
        Also checkpoint every this many optimiser steps (for resuming mid-epoch).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    num_workers : int
        DataLoader workers.
    progress : bool
        A tqdm bar per epoch on process 0.

    Attributes
    ----------
    history : list of dict
        One record per epoch: ``train_loss`` and the objective's other entries, ``val_*`` with ``val_data``.
    epoch : int
        The epoch being trained (an objective may read it, e.g. to switch losses after a warm-up).
    """

    max_epochs: int = 10
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    warmup_steps: int = 0
    accumulate: int = 1
    precision: str = "32"
    grad_clip: float | None = None
    seed: int = 0
    drop_last: bool = False
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    device: str = "cpu"
    num_workers: int = 0
    progress: bool = False
    history: list[dict[str, float]] = field(default_factory=list, init=False, repr=False)
    epoch: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"field 'precision': expected one of {PRECISIONS}, got {self.precision!r}")
        if self.schedule not in ("cosine", "constant"):
            raise ValueError(f"field 'schedule': expected 'cosine' or 'constant', got {self.schedule!r}")
        for name in ("max_epochs", "batch_size", "accumulate"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"field '{name}': expected >= 1, got {getattr(self, name)}")

    # ----------------------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The trainer's parameters (JSON-able)."""
        return {k: v for k, v in asdict(self).items() if k not in ("history", "epoch")}

    def _batches(self, n: int, epoch: int) -> list[np.ndarray]:
        """This process's micro-batches of each global step of an epoch: list over steps of index arrays."""
        rank, world = _dist()
        order = np.random.default_rng([self.seed, epoch]).permutation(n)
        steps = n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)
        out = []
        for s in range(steps):
            batch = order[s * self.batch_size:(s + 1) * self.batch_size]
            if len(batch) % world or len(batch) < world * self.accumulate:
                raise ValueError(f"field 'batch_size': each global batch must split evenly over {world} processes "
                                 f"and {self.accumulate} micro-batches (got a batch of {len(batch)}); set drop_last=True or change "
                                 "batch_size")
            out.append(np.array_split(batch, world)[rank])
        return out

    def _lr(self, step: int, total: int) -> float:
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        if self.schedule == "constant":
            return self.lr
        progress = (step - self.warmup_steps) / max(1, total - self.warmup_steps)
        return self.lr * 0.5 * (1 + math.cos(math.pi * progress))

    def fit(self, model: nn.Module, objective: Callable[[nn.Module, Any], Any], data: torch.utils.data.Dataset,
            *, val_data: torch.utils.data.Dataset | None = None, config: Mapping[str, Any] | None = None,
            resume: bool = False, callback: Callable[[dict[str, Any]], None] | None = None) -> nn.Module:
        """Train ``model`` in place and return it.

        Parameters
        ----------
        model : nn.Module
        objective : callable
            ``objective(model, batch)`` → scalar loss tensor, or dict with ``"loss"`` (other entries are logged).
            ``batch`` is the default collation of ``data[i]`` over the micro-batch.
        data, val_data : Dataset
            Map-style datasets (``len`` and ``__getitem__``).
        config : mapping, optional
            Model description stored in every checkpoint.
        resume : bool
            Continue from the checkpoint in ``checkpoint_dir`` (if any).
        callback : callable, optional
            Called after every optimiser step with ``{"epoch", "step", "loss"}`` (process 0 and others alike).
        """
        run = self._start(model, objective, data, config, resume)
        for epoch in range(run.start_epoch, self.max_epochs):
            record = self._epoch(run, epoch, callback)
            if val_data is not None:
                record.update(self.evaluate(model, objective, val_data, prefix="val_"))
            self.history.append(record)
            run.start_step = 0
            if run.ckpt is not None:
                self._save(run.ckpt, model, run.optimizer, config, epoch + 1, 0, run.global_step, record)
        return model

    def _start(self, model: nn.Module, objective: Callable[[nn.Module, Any], Any], data: torch.utils.data.Dataset,
               config: Mapping[str, Any] | None, resume: bool) -> _Run:
        """Checks, the DDP wrapper, the optimiser and (with ``resume``) the state of the last checkpoint."""
        rank, world = _dist()
        device = torch.device(self.device)
        if device.type == "cuda" and device.index is None and torch.cuda.is_available():
            device = torch.device("cuda", torch.cuda.current_device())   # this rank's GPU (set from LOCAL_RANK)
        if self.precision == "16-mixed" and device.type != "cuda":
            raise ValueError(f"field 'precision': '16-mixed' needs a CUDA device, got device={self.device!r}; use "
                             "'bf16-mixed' or '32'")
        if len(data) < self.batch_size and self.drop_last:
            raise ValueError(f"field 'batch_size': expected at most {len(data)} (the dataset size) with "
                             f"drop_last=True, got {self.batch_size}")
        torch.manual_seed(self.seed)
        model.to(device)
        net: nn.Module = model
        if world > 1:
            net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                      else None)
        params = [p for p in model.parameters() if p.requires_grad]
        objective_params = [p for p in getattr(objective, "parameters", list)() if p.requires_grad]
        if objective_params and world > 1:
            raise ValueError("field 'objective': learnable objective parameters (e.g. a learned temperature) are not "
                             "averaged across processes; make them part of the model for multi-process runs")
        if isinstance(objective, nn.Module):
            objective.to(device)
        optimizer = torch.optim.AdamW(params + objective_params, lr=self.lr, weight_decay=self.weight_decay)
        run = _Run(model, net, objective, data, device, params + objective_params, optimizer,
                   torch.amp.GradScaler("cuda") if self.precision == "16-mixed" else None,
                   len(self._batches(len(data), 0)) * self.max_epochs, config,
                   Path(self.checkpoint_dir) if self.checkpoint_dir else None)
        if resume and run.ckpt is not None and (run.ckpt / "checkpoint.json").exists():
            st = load_checkpoint(run.ckpt, model, optimizer, map_location=str(device))["state"]
            run.start_epoch, run.start_step, run.global_step = st["epoch"], st["step_in_epoch"], st["global_step"]
            torch.set_rng_state(torch.tensor(st["torch_rng"], dtype=torch.uint8))
            self.history = [h for h in self._read_metrics(run.ckpt) if h["epoch"] < run.start_epoch]
        elif rank == 0 and run.ckpt is not None and (run.ckpt / "metrics.jsonl").exists():
            (run.ckpt / "metrics.jsonl").unlink()  # a fresh run: the old run's metrics would be mixed in
        return run

    def _loss(self, run: _Run, batch: Any) -> tuple[torch.Tensor, dict[str, float]]:
        """The objective on one micro-batch (through the DDP wrapper), its scalar loss and logged entries."""
        autocast_dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(self.precision)
        with torch.autocast(run.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = run.objective(run.net, _to_device(batch, run.device))
        loss = out["loss"] if isinstance(out, Mapping) else out
        if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
            raise ValueError("field 'objective': expected a scalar loss tensor (or a dict with 'loss'), got "
                             f"{type(loss).__name__}")
        logs = {k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in out.items()
                if k != "loss"} if isinstance(out, Mapping) else {}
        return loss, logs

    def _step(self, run: _Run, loader: Any, sums: dict[str, float]) -> float:
        """One optimiser step over ``accumulate`` micro-batches; returns its loss (logged entries added to sums)."""
        _, world = _dist()
        for g in run.optimizer.param_groups:
            g["lr"] = self._lr(run.global_step, run.total_steps)
        run.optimizer.zero_grad(set_to_none=True)
        step_loss = 0.0
        for j in range(self.accumulate):
            sync = j == self.accumulate - 1 or world == 1
            with (run.net.no_sync() if not sync else contextlib.nullcontext()):
                loss, logs = self._loss(run, next(loader))
                scaled = loss / self.accumulate
                (run.scaler.scale(scaled) if run.scaler else scaled).backward()
            step_loss += float(loss.detach()) / self.accumulate
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v / self.accumulate
        if run.scaler:
            run.scaler.unscale_(run.optimizer)
        if self.grad_clip:
            torch.nn.utils.clip_grad_norm_(run.params, self.grad_clip)
        if run.scaler:
            run.scaler.step(run.optimizer)
            run.scaler.update()
        else:
            run.optimizer.step()
        run.global_step += 1
        return step_loss

    def _epoch(self, run: _Run, epoch: int, callback: Callable[[dict[str, Any]], None] | None) -> dict[str, float]:
        """The optimiser steps of one epoch (from ``run.start_step`` when resuming); returns the epoch's record."""
        from torch.utils.data import DataLoader
        from tqdm.auto import tqdm

        rank, _ = _dist()
        self.epoch = epoch
        run.model.train()
        steps = self._batches(len(run.data), epoch)
        micro = [[m.tolist() for m in np.array_split(b, self.accumulate)] for b in steps[run.start_step:]]
        loader = iter(DataLoader(run.data, batch_sampler=[m for step in micro for m in step],
                                 num_workers=self.num_workers))
        sums: dict[str, float] = {}
        bar = tqdm(total=len(steps), initial=run.start_step, desc=f"epoch {epoch}", disable=not self.progress or rank,
                   leave=False)
        for s in range(run.start_step, len(steps)):
            step_loss = self._step(run, loader, sums)
            sums["loss"] = sums.get("loss", 0.0) + step_loss
            bar.update(1)
            if callback is not None:
                callback({"epoch": epoch, "step": s, "loss": step_loss})
            if (run.ckpt is not None and self.checkpoint_every and run.global_step % self.checkpoint_every == 0
                    and s + 1 < len(steps)):
                self._save(run.ckpt, run.model, run.optimizer, run.config, epoch, s + 1, run.global_step)
        bar.close()
        done = len(steps) - run.start_step
        return {"epoch": epoch, **{f"train_{k}": v / max(done, 1) for k, v in sums.items()}}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, objective: Callable[[nn.Module, Any], Any], data: torch.utils.data.Dataset,
                 prefix: str = "") -> dict[str, float]:
        """Mean objective (and its logged entries) over ``data`` in batches of ``batch_size``, without gradients.

        With a process group, every process scores its share and the means are all-reduced.
        """
        rank, world = _dist()
        model.eval()
        idx = np.array_split(np.arange(len(data)), world)[rank]
        sums: dict[str, float] = {}
        for start in range(0, len(idx), self.batch_size):
            part = idx[start:start + self.batch_size]
            batch = torch.utils.data.default_collate([data[int(i)] for i in part])
            out = objective(model, _to_device(batch, torch.device(self.device)))
            out = out if isinstance(out, Mapping) else {"loss": out}
            for k, v in out.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(part)
        keys = sorted(sums)
        totals = torch.tensor([sums[k] for k in keys] + [float(len(idx))], dtype=torch.float64)
        if world > 1:
            torch.distributed.all_reduce(totals)
        model.train()
        return {f"{prefix}{k}": float(totals[i] / totals[-1]) for i, k in enumerate(keys)}

    def _save(self, ckpt: Path, model: nn.Module, optimizer: torch.optim.Optimizer, config: Mapping[str, Any] | None,
              epoch: int, step: int, global_step: int, record: dict[str, float] | None = None) -> None:
        rank, world = _dist()
        if rank == 0:
            state = {"epoch": epoch, "step_in_epoch": step, "global_step": global_step,
                     "torch_rng": torch.get_rng_state().tolist(), "trainer": self.config(), "world_size": world}
            save_checkpoint(ckpt, model, config, optimizer=optimizer, state=state)
            if record is not None:
                with open(ckpt / "metrics.jsonl", "a") as fh:
                    fh.write(dumps(record) + "\n")
        if world > 1:
            torch.distributed.barrier()

    @staticmethod
    def _read_metrics(ckpt: Path) -> list[dict[str, float]]:
        f = ckpt / "metrics.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.exists() else []
