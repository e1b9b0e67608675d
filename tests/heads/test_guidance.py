"""Encoder-guided generation (BrainDiVE): the gradient of an encoding model's predicted activation of a voxel group
steers the tiny unCLIP's sampling; scale 0 is plain sampling, a positive scale drives the group, a negative one
silences it."""

import numpy as np
import pytest
import torch

from neurodecode.alignment.encoding_models import RidgeEncodingModel, pixel_features
from neurodecode.core.stimuli import resize_images
from neurodecode.heads.images import UnCLIPImageHead


def test_guided_samples_drive_the_chosen_voxels():
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(80, 16, 16, 1)).astype(np.float32)
    X = resize_images(images, 8, 1).reshape(80, -1)
    left = np.zeros((8, 8))
    left[:, :4] = 1.0                                        # voxels 0-2 see the left half, 3-5 the right half
    W = np.stack([left.ravel()] * 3 + [left[:, ::-1].ravel()] * 3, axis=1)
    Y = X @ W + 0.1 * rng.normal(size=(80, 6))
    encoder = RidgeEncodingModel().fit(X, Y)
    drive = encoder.activation([0, 1, 2], pixel_features(8), standardize=X)
    head = UnCLIPImageHead.tiny(embed_dim=8, image_size=16, block_out_channels=(16, 32), seed=0)
    latents = rng.normal(size=(4, 8)).astype(np.float32)

    def act(scale):
        out = head.generate(latents, num_inference_steps=6, brain_guidance=drive, brain_scale=scale).images[:, 0]
        return drive(torch.as_tensor(out).permute(0, 3, 1, 2)).detach().numpy(), out

    plain = head.generate(latents, num_inference_steps=6).images[:, 0]
    a0, same = act(0.0)
    np.testing.assert_array_equal(same, plain)                                   # scale 0: plain sampling
    up, images_up = act(0.5)
    down, _ = act(-0.5)
    print(f"\npredicted activation (training-image s.d.): plain {a0.mean():+.2f}, guided up {up.mean():+.2f}, "
          f"down {down.mean():+.2f}")
    assert up.mean() > a0.mean() + 1.0 > down.mean() + 2.0
    other = encoder.activation([3, 4, 5], pixel_features(8), standardize=X)
    assert (images_up[:, :, :8].mean() > images_up[:, :, 8:].mean())            # the left half brightened
    assert other(torch.as_tensor(images_up).permute(0, 3, 1, 2)).mean() < up.mean()
    with pytest.raises(ValueError, match=r"field 'voxels': expected indices among the 6 response columns"):
        encoder.activation([7], pixel_features(8))


def test_a_training_run_keeps_the_guidance_encoder_and_reconstruct_applies_it(tmp_path):
    """images.brain_guidance.top_voxels at training time → the checkpoint holds the encoder; reconstruct's
    --brain-scale drives the group (0: off)."""
    from pathlib import Path

    from PIL import Image

    from neurodecode.cli import main
    from neurodecode.pipeline import DecodingPipeline
    from neurodecode.pipeline.decoding import reconstruct

    run = tmp_path / "run"
    assert main(["train", "experiment=tiny", "images.brain_guidance.top_voxels=5", "head@heads.captions=null",
                 f"hydra.run.dir={run}"]) == 0
    pipe = DecodingPipeline.load(run / "checkpoint")
    assert len(pipe.guidance.voxels_) == 5 and pipe.guidance.size == 12
    drive = pipe.brain_guidance()

    def activation(scale):
        out = tmp_path / f"rec{scale}"
        reconstruct(run / "checkpoint", [run / "heldout_epochs.h5"], out, heads=["images"], brain_scale=scale,
                    progress=False)
        imgs = np.stack([np.asarray(Image.open(p), dtype=np.float32) / 255
                         for p in sorted(Path(out, "images").glob("*.png"))])
        return float(drive(torch.as_tensor(imgs[..., None]).permute(0, 3, 1, 2)).mean()), out

    plain, _ = activation(0.0)
    guided, out = activation(0.3)
    print(f"\ntiny run: group activation plain {plain:+.2f}, guided {guided:+.2f}")
    assert guided > plain + 0.1
    assert "brain guidance</th>" in (out / "report.html").read_text()
