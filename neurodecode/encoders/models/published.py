"""Reading published encoder checkpoints without running their code, and mapping their keys onto ours.

A published checkpoint (LaBraM's ``labram-base.pth``, CBraMod's ``pretrained_weights.pth``) is read as tensors only:
``.safetensors`` by safetensors, ``.pth``/``.pt``/``.bin`` by ``torch.load(weights_only=True)`` (PyTorch's restricted
unpickler: tensors and plain containers, never arbitrary objects or code). :func:`load_published` unwraps the usual
nesting (``model``/``state_dict``/``module``), strips the training wrapper's prefixes (``student.``, ``module.``),
drops the keys of the parts a feature encoder does not use (pretraining heads, mask tokens), and loads the rest
strictly: a key missing on either side, or a shape that differs, is an error naming the file and the keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

__all__ = ["load_published", "read_state_dict"]


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file (safetensors, or a torch file read with ``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: field 'checkpoint': expected a published checkpoint file (.pth, .pt, .bin "
                                "or .safetensors)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:          # the restricted unpickler refuses objects other than tensors and containers
        raise ValueError(f"{path}: field 'checkpoint': expected tensors only (read with weights_only=True, which "
                         f"never runs code), got {type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    for key in ("model", "state_dict", "module"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: field 'checkpoint': expected a state dict (name → tensor), got "
                         f"{type(state).__name__}")
    return dict(state)


def load_published(model: nn.Module, path: str | os.PathLike, *, prefixes: Sequence[str] = ("student.", "module."),
                   drop: Sequence[str] = (), rename: Mapping[str, str] | Callable[[str], str] | None = None
                   ) -> nn.Module:
    """Load a published checkpoint into ``model`` (strict after the mapping).

    Parameters
    ----------
    model : nn.Module
        Built to the checkpoint's sizes.
    path : path
    prefixes : str
        Leading key prefixes stripped (each at most once, in order).
    drop : str
        Key prefixes (published names, after stripping) of published parts the model does not have (e.g.
        ``"lm_head."``, ``"mask_token"``).
    rename : mapping or callable, optional
        Published key prefix → model key prefix, or a function of the published key giving the model's, applied
        after stripping and dropping.
    """
    state = {}
    for key, value in read_state_dict(path).items():
        for p in prefixes:
            key = key.removeprefix(p)
        if any(key.startswith(d) for d in drop):
            continue
        if callable(rename):
            key = rename(key)
        else:
            for old, new in (rename or {}).items():
                if key.startswith(old):
                    key = new + key[len(old):]
        state[key] = value
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    shapes = [f"{k} {tuple(state[k].shape)} (model {tuple(own[k].shape)})" for k in set(own) & set(state)
              if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{path}: field 'checkpoint': the weights do not match {type(model).__name__}"
                         f"({getattr(model, 'config', {})}): missing {missing[:6]}{' …' if len(missing) > 6 else ''}, "
                         f"unexpected {unexpected[:6]}{' …' if len(unexpected) > 6 else ''}, shapes {sorted(shapes)[:4]}")
    model.load_state_dict(state)
    return model
