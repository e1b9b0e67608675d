"""Stage 6 — the pipeline: a trained encoder → aligner → heads chain, fitted from a config, saved, and run on new
recordings.

* :mod:`.checkpoint` — :class:`DecodingPipeline` (the checkpoint folder) and its input contract.
* :mod:`.fitting` — :func:`fit_pipeline` and :func:`run` (one training run from a composed ``train`` config).
* :mod:`.decoding` — :func:`reconstruct` in steps: read and check → decode → score → write and report.

May import: every stage below (``neurodecode.core`` … ``neurodecode.evaluation``).
"""

from typing import Any

from neurodecode.pipeline.checkpoint import DecodingPipeline, Inference, check_contract, input_contract
from neurodecode.pipeline.decoding import decode, read_recordings, reconstruct
from neurodecode.pipeline.fitting import fit_pipeline, load_data, run, split_heldout

_MOVED = {"TargetSpace": "neurodecode.alignment.targets", "VoxelFeatures": "neurodecode.encoders.voxels",
          "stimulus_images": "neurodecode.core.stimuli", "resize_images": "neurodecode.core.stimuli"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:        # names neurodecode.pipeline had before the stage packages (one release)
        import importlib
        import warnings

        warnings.warn(f"neurodecode.pipeline.{name} moved to {_MOVED[name]}.{name}", FutureWarning, stacklevel=2)
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'neurodecode.pipeline' has no attribute {name!r}")


__all__ = ["DecodingPipeline", "Inference", "check_contract", "decode", "fit_pipeline", "input_contract",
           "load_data", "read_recordings", "reconstruct", "run", "split_heldout"]
