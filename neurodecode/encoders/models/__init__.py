"""Encoder model files, one per model (diffusers' layout): small readable torch modules built from plain parameters.

* :mod:`.tokenizers` — tokens in seconds and in space: resampling, patches, channel embeddings, spatial attention,
  region fusion, the checked input contract (:func:`input_spec`).
* :mod:`.mae` — :class:`SignalEncoder` (channel-agnostic transformer), :class:`SignalMAE`, :class:`VQTokenizer`.
* :mod:`.subjects` — :class:`SubjectLayers`, :class:`SubjectEmbedders`, :class:`CrossSubjectModel`.
* :mod:`.mlp` — :class:`ResidualMLP` (MindEye-style residual MLP for vector inputs).
* :mod:`.labram`, :mod:`.cbramod` — the published EEG foundation architectures (LaBraM, CBraMod): braindecode's
  networks as feature encoders, with :mod:`.published` reading their released checkpoints as tensors and mapping
  the keys onto braindecode's.
"""

from neurodecode.encoders.models.mae import SignalEncoder, SignalMAE, VQTokenizer
from neurodecode.encoders.models.mlp import ResidualMLP
from neurodecode.encoders.models.subjects import CrossSubjectModel, SubjectEmbedders, SubjectLayers, pad_inputs
from neurodecode.encoders.models.tokenizers import SignalSpec, input_spec

__all__ = ["CrossSubjectModel", "ResidualMLP", "SignalEncoder", "SignalMAE", "SignalSpec", "SubjectEmbedders",
           "SubjectLayers", "VQTokenizer", "input_spec", "pad_inputs"]
