"""The head protocol: every head declares its latent and output kind, returns a typed output, and draws each trial's
samples from its own generator — so an output depends on (seed, trial id, sample index) only."""

import numpy as np
import pytest
import torch

from neurodecode.heads.base import (CaptionOutput, Head, ImageOutput, LatentSpec, MeshOutput, run_in_batches,
                                    trial_seed)


def _tiny(name):
    from neurodecode import build

    return build("head", name, [f"captions={['a red square', 'a blue dot']}"] if name in CAPTIONED else [])


CAPTIONED = ("tiny_prefix_caption", "tiny_git_caption")


TINY = {"tiny_unclip": ImageOutput, "tiny_ip_adapter": ImageOutput, "tiny_prefix_caption": CaptionOutput,
        "tiny_git_caption": CaptionOutput, "sdf_mesh": MeshOutput,
        "tiny_shap_e": MeshOutput}
FAST = {"tiny_unclip": {"num_inference_steps": 3, "n_samples": 2}, "tiny_ip_adapter": {"num_inference_steps": 2},
        "tiny_prefix_caption": {}, "tiny_git_caption": {"max_tokens": 3},
        "sdf_mesh": {"grid_size": 16, "n_views": 1, "render_size": 16}, "tiny_shap_e": {"num_inference_steps": 2, "grid_size": 16, "n_views": 1,
                                                   "render_size": 16}}


@pytest.fixture(scope="module")
def heads():
    return {name: _tiny(name) for name in TINY}


@pytest.mark.parametrize("name", sorted(TINY))
def test_every_tiny_head_follows_the_protocol(name, heads):
    head = heads[name]
    assert isinstance(head, Head) and head.kind == TINY[name].kind and isinstance(head.latent, LatentSpec)
    z = np.random.default_rng(0).normal(size=(3, head.latent.dim)).astype(np.float32)
    out = head.generate(z, seed=1, trial_ids=["a", "b", "c"], **FAST[name])
    assert isinstance(out, TINY[name]) and out.trials == ["a", "b", "c"] and out.head == head.name
    assert len(out) == 3 and list(out.report_columns().values())[0].__len__() == 3
    with pytest.raises(ValueError, match=rf"field 'latents': the .* expects \(n_trials, {head.latent.dim}\)"):
        head.generate(np.zeros((2, head.latent.dim + 1), np.float32), **FAST[name])
    with pytest.raises(ValueError, match=r"field 'trial_ids': expected one id per latent \(3\), got 2"):
        head.generate(z, trial_ids=["a", "b"], **FAST[name])


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny_unclip", "tiny_ip_adapter", "tiny_shap_e"])
def test_outputs_do_not_depend_on_the_batch_size(name, heads):
    head = heads[name]
    z = np.random.default_rng(2).normal(size=(4, head.latent.dim)).astype(np.float32)
    one = head.generate(z, seed=3, batch_size=1, **FAST[name])
    four = head.generate(z, seed=3, batch_size=4, **FAST[name])
    if isinstance(one, MeshOutput):
        from neurodecode.evaluation.metrics import chamfer_distance

        # latents equal to float rounding (amplified by the Karras sigmas); marching cubes may then add or drop a
        # vertex, so the surfaces are compared (Chamfer distance in units of the 2-unit bounding box)
        for a, b in zip(one.meshes, four.meshes):
            assert chamfer_distance(a.vertices, b.vertices)[0] < 1e-3
    else:
        # the same generators; batched convolutions may differ from single ones by float rounding only
        np.testing.assert_allclose(one.images, four.images, atol=2e-4)
    alone = head.generate(z[2:3], seed=3, trial_ids=["2"], **FAST[name])   # trial "2" on its own
    if isinstance(alone, ImageOutput):
        np.testing.assert_allclose(alone.images[0], four.images[2], atol=2e-4)
    other = head.generate(z, seed=4, batch_size=4, **FAST[name])
    if isinstance(other, ImageOutput):
        assert not np.allclose(other.images, four.images)


def test_a_batch_halved_after_an_out_of_memory_error_gives_the_same_images(heads, monkeypatch):
    head = heads["tiny_unclip"]
    z = np.random.default_rng(5).normal(size=(4, head.latent.dim)).astype(np.float32)
    want = head.generate(z, seed=0, batch_size=4, **FAST["tiny_unclip"])
    real = head._sample
    calls = []

    def flaky(embeds, *args):
        calls.append(len(embeds))
        if len(embeds) == 4:                               # the first, full batch runs out of GPU memory
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return real(embeds, *args)

    monkeypatch.setattr(head, "_sample", flaky)
    got = head.generate(z, seed=0, batch_size=4, **FAST["tiny_unclip"])
    assert calls[0] == 4 and set(calls[1:]) == {2}         # halved, then retried
    np.testing.assert_allclose(got.images, want.images, atol=2e-4)


def test_trial_seeds_depend_on_seed_trial_and_sample_only():
    assert trial_seed(0, "t1", 0) == trial_seed(0, "t1", 0)
    seeds = {trial_seed(s, t, k) for s in (0, 1) for t in ("t1", "t2", 3) for k in (0, 1)}
    assert len(seeds) == 12 and all(0 <= s < 2**63 for s in seeds)
    assert trial_seed(0, 3, 0) == trial_seed(0, "3", 0)    # a trial id is its string


def test_run_in_batches_refuses_a_bad_batch_size():
    with pytest.raises(ValueError, match="field 'batch_size': expected >= 1, got 0"):
        run_in_batches(lambda idx: idx, 3, 0)


def test_latent_spec_accepts_what_it_declares():
    spec = LatentSpec(4, pooled=True, tokens=True, space="test space")
    assert spec.check(np.zeros((2, 4)), "h").shape == (2, 4)
    assert spec.check(np.zeros((2, 5, 4)), "h").shape == (2, 5, 4)
    with pytest.raises(ValueError, match=r"expects \(n_trials, 4\) embeddings, got shape \(2, 5, 4\); it reads test"):
        LatentSpec(4, space="test space").check(np.zeros((2, 5, 4)), "h")
    with pytest.raises(ValueError, match="expected finite values for the h"):
        spec.check(np.full((1, 4), np.nan), "h")
