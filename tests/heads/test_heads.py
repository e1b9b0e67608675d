"""Generative heads: tiny variants (seeded, shapes, config round trip), low-level branch, captions, outputs, errors."""

import json

import numpy as np
import pytest
import torch

from neurodecode.heads.captions import GitCaptionHead, NearestCaptionHead, PrefixCaptionHead
from neurodecode.heads.writing import check_writable, write_trials
from neurodecode.heads.images import LowLevelImages, UnCLIPImageHead

CAPTIONS = ["a red square on a table", "two dogs run in the park", "a man rides a horse", "a bowl of fruit",
            "a cat sleeps on a sofa", "children play football on grass"]


@pytest.fixture(scope="module")
def head():
    return UnCLIPImageHead.tiny(embed_dim=16, image_size=16, channels=1, block_out_channels=(16, 32), seed=0)


def embeds(n=3, d=16, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_image_head_is_seeded_and_has_the_declared_shapes(head):
    a = head.generate(embeds(), num_inference_steps=4, n_samples=2, seed=7)
    b = head.generate(embeds(), num_inference_steps=4, n_samples=2, seed=7)
    c = head.generate(embeds(), num_inference_steps=4, n_samples=2, seed=8)
    assert a.images.shape == (3, 2, 16, 16, 1) and a.images.dtype == np.float32
    assert 0 <= a.images.min() and a.images.max() <= 1
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    guided = head.generate(embeds(), num_inference_steps=4, guidance_scale=3.0, noise_level=100)
    assert guided.images.shape == (3, 1, 16, 16, 1)


def test_image_head_config_round_trip(head):
    again = UnCLIPImageHead.tiny(**head.config["tiny"])
    for k, v in head.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)


def test_low_level_branch_strength_changes_the_output(head):
    init = np.random.default_rng(1).uniform(size=(3, 16, 16))
    outs = {s: head.generate(embeds(), init_images=init, strength=s, num_inference_steps=10).images[:, 0, ..., 0]
            for s in (0.2, 0.6, 1.0)}
    dist = {s: float(np.abs(o - init).mean()) for s, o in outs.items()}
    assert not np.array_equal(outs[0.2], outs[0.6])
    assert dist[0.2] < dist[0.6] < dist[1.0]  # the lower the strength, the closer to the initial images
    X, pix = np.random.default_rng(2).normal(size=(12, 5)), np.random.default_rng(3).uniform(size=(12, 16, 16))
    blurry = LowLevelImages(head.image_shape).fit(X, pix)
    low = blurry.predict(np.zeros((2, 5)))
    assert low.shape == (2, 16, 16, 1) and 0 <= low.min() <= low.max() <= 1
    np.testing.assert_allclose(low[0, ..., 0], np.clip(blurry.ridge_.intercept_.reshape(16, 16), 0, 1), rtol=1e-6)


def test_selection_by_embedding_similarity(head):
    # a selector that scores each image by its mean brightness along the first embedding axis
    def select_with(images):
        m = images.reshape(len(images), -1).mean(1)
        return np.stack([m, 1 - m] + [np.zeros_like(m)] * 14, axis=1)

    target = np.zeros((2, 16), np.float32)
    target[:, 0] = 1.0  # prefer bright images
    out = head.generate(target, num_inference_steps=3, n_samples=4, select_with=select_with)
    means = out.images.reshape(2, 4, -1).mean(-1)
    assert (np.diff(means, axis=1) <= 1e-6).all()  # returned best first (here: brightest first)


def test_vae_variant_and_fit(tmp_path):
    h = UnCLIPImageHead.tiny(embed_dim=8, image_size=16, channels=3, block_out_channels=(16, 32), use_vae=True)
    assert h.generate(embeds(2, 8), num_inference_steps=2).images.shape == (2, 1, 16, 16, 3)
    small = UnCLIPImageHead.tiny(embed_dim=8, image_size=16, channels=1, block_out_channels=(16, 32))
    before = {k: v.clone() for k, v in small.unet.state_dict().items()}
    small.fit(embeds(8, 8), np.random.default_rng(0).uniform(size=(8, 16, 16)), trainer={"max_epochs": 2,
                                                                                         "batch_size": 4})
    assert any(not torch.equal(before[k], v) for k, v in small.unet.state_dict().items())


def test_image_head_bad_input(head):
    with pytest.raises(ValueError, match=r"field 'latents': the tiny-unclip image head expects \(n_trials, 16\) "
                                         r"embeddings, got shape \(3, 12\)"):
        head.generate(embeds(3, 12))
    with pytest.raises(ValueError, match=r"field 'init_images': expected images \(n, 16, 16, 1\) in \[0, 1\], got "
                                         r"shape \(3, 20, 20, 1\)"):
        head.generate(embeds(), init_images=np.zeros((3, 20, 20)), strength=0.5)
    with pytest.raises(ValueError, match=r"field 'strength': expected a value in \(0, 1\], got 0"):
        head.generate(embeds(), strength=0)


def test_ip_adapter_head_tiny(tmp_path):
    from neurodecode.heads.images import IPAdapterImageHead

    h = IPAdapterImageHead.tiny()
    e = embeds(2, 24)
    a = h.generate(e, num_inference_steps=3, n_samples=2).images
    assert a.shape == (2, 2, 32, 32, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, h.generate(e, num_inference_steps=3, n_samples=2).images)
    other = h.generate(np.ones_like(e), num_inference_steps=3, n_samples=2).images
    assert np.abs(other - a).mean() > 1e-3  # the embedding conditions the image through the IP-Adapter tokens
    again = IPAdapterImageHead.tiny(**h.config["tiny"])
    for k, v in h.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    with pytest.raises(ValueError, match=r"the tiny-ip-adapter image head expects \(n_trials, 24\) embeddings"):
        h.generate(embeds(2, 16))


def test_missing_weights_offline_say_which_and_how(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match=r"could not load the weights 'stabilityai/stable-diffusion-2-1-unclip-small/"
                                           r"unet' for UNet2DConditionModel: .* HF_HUB_OFFLINE=1 .* `huggingface-cli "
                                           r"download stabilityai/stable-diffusion-2-1-unclip-small`"):
        UnCLIPImageHead.from_pretrained("stabilityai/stable-diffusion-2-1-unclip-small")
    with pytest.raises(RuntimeError, match=r"could not load the weights 'gpt2'"):
        PrefixCaptionHead.from_pretrained("gpt2")
    with pytest.raises(RuntimeError, match=r"could not load the weights 'microsoft/git-base-coco' for GitForCausalLM"):
        GitCaptionHead.from_pretrained()
    from neurodecode.heads.images import IPAdapterImageHead
    from neurodecode.heads.meshes import ShapEMeshHead

    with pytest.raises(RuntimeError, match=r"could not load the weights 'stable-diffusion-v1-5/stable-diffusion-v1-5'"):
        IPAdapterImageHead.from_pretrained()
    with pytest.raises(RuntimeError, match=r"could not load the weights 'openai/shap-e-img2img/prior'"):
        ShapEMeshHead.from_pretrained()


def test_trained_tiny_caption_head_reproduces_training_captions():
    E = embeds(6, 32, seed=4)
    h = PrefixCaptionHead.tiny(CAPTIONS, embed_dim=32)
    h.fit(E, CAPTIONS, trainer={"max_epochs": 150, "batch_size": 6, "lr": 3e-3})
    assert h.generate(E).captions == CAPTIONS
    again = PrefixCaptionHead.tiny(CAPTIONS, **{k: v for k, v in h.config["tiny"].items() if k != "vocabulary"})
    assert again.tokenizer.convert_ids_to_tokens(list(range(len(again.tokenizer)))) == h.config["tiny"]["vocabulary"]
    with pytest.raises(ValueError, match=r"field 'captions': expected one caption per embedding \(6\), got 5"):
        h.fit(E, CAPTIONS[:5])


def _shapes(labels, seed):
    """Four kinds of 16×16 grey shapes (square, dot, two bars, cross) with pixel noise, one per label."""
    rng = np.random.default_rng(seed)
    imgs = rng.uniform(0, 0.1, (len(labels), 16, 16, 1)).astype(np.float32)
    for img, label in zip(imgs, labels):
        [lambda a: a[4:12, 4:12].fill(1), lambda a: a[6:10, 6:10].fill(0.5), lambda a: a[:, [3, 12]].fill(1),
         lambda a: (a[7].fill(1), a[:, 7].fill(1))][label](img)
    return imgs


@pytest.mark.slow
def test_tiny_git_head_captions_held_out_latents_through_its_visual_token_map():
    """MindEye2's caption path: the captioner learns (image → caption), ridge maps latents onto its visual tokens,
    and latents it never saw (new noise) decode to their stimulus's caption."""
    caps = ["a white square", "a grey dot", "two bars", "a cross"]
    rng = np.random.default_rng(0)

    def latents(labels):
        return np.c_[np.eye(4)[labels] * 3 + rng.normal(0, 0.3, (len(labels), 4)),
                     rng.normal(size=(len(labels), 12))].astype(np.float32)
    train, test = np.arange(40) % 4, np.array([3, 0, 2, 1, 1, 3])
    h = GitCaptionHead.tiny(caps, embed_dim=16)
    again = GitCaptionHead.tiny(caps, **{k: v for k, v in h.config["tiny"].items() if k != "vocabulary"})
    for k, v in h.state_dict().items():
        torch.testing.assert_close(again.state_dict()[k], v)
    with pytest.raises(ValueError, match=r"field 'images': GIT caption head \(tiny\) fits its map onto the visual "
                                         r"tokens of the stimulus images: expected one image per latent \(40\), got none"):
        h.fit(latents(train), [caps[i] for i in train])
    h.fit(latents(train), [caps[i] for i in train], trainer={"max_epochs": 60, "batch_size": 8, "lr": 3e-3},
          images=_shapes(train, 1))
    assert h.visual_tokens(_shapes(test, 2)).shape == (6, 17, 32)
    out = h.generate(latents(test), trial_ids=list("abcdef"))
    assert out.captions == [caps[i] for i in test] and out.trials == list("abcdef")
    np.testing.assert_array_equal(h.pixel_values(_shapes(test, 2)[..., 0]), h.pixel_values(_shapes(test, 2)))
    with pytest.raises(ValueError, match=r"field 'images': expected \(n_images, height, width\[, 1 or 3\]\)"):
        h.pixel_values(np.zeros((2, 16)))


def test_nearest_caption_head_with_a_tiny_open_clip(embedder):
    head = NearestCaptionHead(CAPTIONS, embedder, block=4)
    own = embedder.embed_texts(CAPTIONS)
    out = head.generate(own, k=2)
    assert out.captions == CAPTIONS and out.scores.shape == (6, 2)
    S = torch.nn.functional.normalize(torch.as_tensor(own), dim=-1)
    brute = (S @ S.T).topk(2, dim=1)
    np.testing.assert_allclose(out.scores, brute.values.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match=r"field 'k': expected 1 <= k <= the bank size 6, got 7"):
        head.generate(own, k=7)
    with pytest.raises(ValueError, match=r"expects \(n_trials, 32\) embeddings, got shape \(2, 5\)"):
        head.generate(np.zeros((2, 5)))


def test_write_trials_files_and_metadata(tmp_path, head):
    images = head.generate(embeds(2), num_inference_steps=2, n_samples=2).images
    out = write_trials(tmp_path / "out", "tiny-unclip", images=images, captions=["a", "b"], trials=["t1", "t2"],
                       subjects=["sub-01", "sub-01"], seed=3, model_ids={"image": "tiny"}, timings={"images": 0.1})
    names = sorted(p.name for p in out.iterdir())
    assert names == ["metadata.json", "trial-t1.txt", "trial-t1_sample-0.png", "trial-t1_sample-1.png",
                     "trial-t2.txt", "trial-t2_sample-0.png", "trial-t2_sample-1.png"]
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["trials"][1] == {"trial": "t2", "subject": "sub-01", "seed": 3, "head": "tiny-unclip",
                                 "files": ["trial-t2_sample-0.png", "trial-t2_sample-1.png", "trial-t2.txt"],
                                 "caption": "b"}
    assert meta["model_ids"] == {"image": "tiny"} and meta["timings"] == {"images": 0.1}
    from PIL import Image

    assert Image.open(out / "trial-t1_sample-0.png").size == (16, 16)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PermissionError, match=r"file/out: field 'out_dir': expected a writable folder"):
        check_writable(blocker / "out")


def test_every_head_config_instantiates_or_names_its_weights(monkeypatch, tmp_path):
    from neurodecode.core.configs import CONF_DIR, build

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bank = tmp_path / "bank.txt"
    bank.write_text("\n".join(CAPTIONS))
    overrides = {"tiny_prefix_caption": [f"captions={CAPTIONS}"], "tiny_git_caption": [f"captions={CAPTIONS}"], "nearest_caption": [f"captions_file={bank}"]}
    for path in sorted((CONF_DIR / "head").glob("*.yaml")):
        name = path.stem
        try:
            head = build("head", name, overrides.get(name, []))
        except Exception as err:  # real weights are not downloadable here: the error must say which and how
            text = str(err.__cause__ or err)
            assert name in ("unclip_sd21_small", "gpt2_prefix_caption", "git_base_coco", "nearest_caption", "shap_e_img2img",
                            "ip_adapter_sd15"), (name, text)
            assert "could not load" in text or "weights not available" in text, (name, text)
            continue
        assert hasattr(head, "generate"), name


@pytest.mark.slow
@pytest.mark.realdata
def test_digits69_reconstructions_grid_and_scores(shared_data, tmp_path):
    """The script end to end with 3 epochs of the tiny generator (the README's figures come from the full script):
    grid, per-trial files, harness scores; the low-level layout must survive img2img."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "benchmarks" / "eval_reconstructions.py"
    proc = subprocess.run([sys.executable, str(script), "--data", str(shared_data), "--epochs", "3", "--steps", "4",
                           "--samples", "1", "--strengths", "0.3", "--out", str(tmp_path)], capture_output=True,
                          text=True, env=dict(os.environ), timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    print("\n" + proc.stdout)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    record = json.loads((tmp_path / "eval_reconstructions.json").read_text())      # the benchmarks' result file
    assert record["benchmark"] == "eval_reconstructions" and record["arguments"]["epochs"] == 3
    assert record["machine"]["torch"] and record["results"]["scores"]
    meta = json.loads((tmp_path / "images" / "metadata.json").read_text())
    assert len(meta["trials"]) == 10 and meta["note"].startswith("tiny generator trained on the 90 training")
    scores = {(r["pipeline"], r["metric"]): r["value"] for r in json.loads((tmp_path / "scores.json").read_text())}
    low = "low-level + img2img, strength 0.3"
    assert scores[(low, "pixcorr")] > 0.6 and scores[(low, "two_way")] > 0.85  # the blurry layout survives
    assert scores[("blurry (ridge → pixels)", "two_way")] > 0.9


# -- 3D -----------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shap_e():
    from neurodecode.heads.meshes import ShapEMeshHead

    return ShapEMeshHead.tiny(embed_dim=16)


@pytest.mark.slow
def test_tiny_shap_e_meshes_are_seeded_closed_and_written(shap_e, tmp_path):
    from neurodecode.heads.meshes import ShapEMeshHead

    e = embeds(2, 16)
    a = shap_e.generate(e, num_inference_steps=3, grid_size=24, n_views=3, render_size=48)
    b = shap_e.generate(e, num_inference_steps=3, grid_size=24, n_views=3, render_size=48)
    assert len(a.meshes) == 2 and a.renders.shape == (2, 3, 48, 48)
    for m, m2 in zip(a.meshes, b.meshes):
        np.testing.assert_array_equal(m.vertices, m2.vertices)
        # closed: Shap-E pads the signed-distance field with a negative border before marching cubes
        assert m.is_watertight and len(m.faces) > 0
    assert not np.array_equal(a.meshes[0].vertices[:10], shap_e.generate(
        e, num_inference_steps=3, grid_size=24, seed=5).meshes[0].vertices[:10])
    tokens = shap_e.generate(np.repeat(e[:, None], 3, axis=1), num_inference_steps=2, grid_size=16)
    assert len(tokens.meshes) == 2  # token-level embeddings (n, n_tokens, embed_dim) are accepted too
    again = ShapEMeshHead.tiny(**shap_e.config["tiny"])
    projected = {f"renderer.mlp.mlp.{i}.weight" for i in range(4)}  # overwritten from each latent when decoding
    for k, v in shap_e.state_dict().items():
        if k not in projected:
            torch.testing.assert_close(again.state_dict()[k], v)
    import trimesh

    for fmt in ("obj", "ply", "glb"):
        out = write_trials(tmp_path / fmt, "tiny-shap-e", meshes=a.meshes, mesh_format=fmt)
        loaded = trimesh.load(out / f"trial-0.{fmt}", force="mesh")
        assert len(loaded.faces) == len(a.meshes[0].faces)
    with pytest.raises(ValueError, match=r"expects \(n_trials, 16\) or \(n_trials, n_tokens, 16\) embeddings, "
                                         r"got shape \(2, 8\)"):
        shap_e.generate(embeds(2, 8))


def test_render_mesh_views():
    import trimesh

    from neurodecode.heads.meshes import render_mesh

    views = render_mesh(trimesh.creation.icosphere(subdivisions=2), n_views=2, size=32)
    assert views.shape == (2, 32, 32) and views[:, 16, 16].max() < 1.0 and views[:, 0, 0].min() == 1.0


@pytest.mark.realdata
def test_mind3d_fmri_to_3d_end_to_end(shared_data, tmp_path):
    """Six fMRI-Shape samples: cortical-surface frames → voxel features → ridge to an embedding of the object's
    render (leave one out) → tiny Shap-E → meshes, renders, files, n-way scores. A smoke test of the path: six
    samples cannot train anything, and the tiny generator is random."""
    from PIL import Image
    from sklearn.decomposition import PCA

    from neurodecode.alignment import RidgeAlignment
    from neurodecode.loaders.precomputed import load_surface
    from neurodecode.heads.meshes import ShapEMeshHead
    from neurodecode.evaluation.metrics import score_outputs

    root = shared_data / "mind3d_demo"
    files = sorted(p for p in root.glob("*.npy") if p.name != "cmask.npy")
    ep = load_surface(files, mask=root / "cmask.npy")
    assert ep.data.shape == (6, 31198, 10)
    X = ep.data.mean(axis=2)
    renders = np.stack([np.asarray(Image.open(f.with_suffix(".png")).convert("L").resize((32, 32)), np.float32) / 255
                        for f in files])
    E = PCA(4, random_state=0).fit_transform(renders.reshape(6, -1))
    pred = np.stack([RidgeAlignment().fit(np.delete(X, i, 0), np.delete(E, i, 0)).predict(X[i:i + 1])[0]
                     for i in range(6)])
    head = ShapEMeshHead.tiny(embed_dim=4)
    out = head.generate(pred, num_inference_steps=4, grid_size=24, n_views=2, render_size=32)
    assert len(out.meshes) == 6 and all(m.is_watertight for m in out.meshes)
    write_trials(tmp_path, "tiny-shap-e", meshes=out.meshes, trials=list(ep.table["stimulus"]), mesh_format="glb",
                 extra={"note": "smoke test: tiny random Shap-E"})
    assert len(list(tmp_path.glob("trial-*.glb"))) == 6
    feats = out.renders[:, 0].reshape(6, -1)
    scores = score_outputs("meshes", [m.sample(256, seed=0) for m in out.meshes],
                           [m.sample(256, seed=1) for m in out.meshes], render_features=(feats, renders.reshape(6, -1)))
    assert {"chamfer", "2_way_top1"} <= set(scores.table["metric"])


def test_heads_with_published_weights_get_the_raw_embedding_scale_they_were_trained_on(embedder):
    """unCLIP (768-d ViT-L/14 at stable-diffusion-2-1-unclip-small's size) reads raw tower embeddings at its image
    normaliser's scale; IP-Adapter (1024-d ViT-H/14) at the target space's measured raw norm; unit-norm CLIP
    predictions are rescaled, never passed on silently."""
    import pandas as pd

    from neurodecode.alignment.targets import TargetSpace
    from neurodecode.heads.base import prepare_latents
    from neurodecode.heads.images import IPAdapterImageHead

    unclip = UnCLIPImageHead.tiny(embed_dim=768, image_size=16, block_out_channels=(16, 32), raw_embeddings=True)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():                        # a normaliser as fitted on real embeddings: per-dimension stats
        unclip.image_normalizer.mean.copy_(0.1 * torch.randn(1, 768, generator=g))
        unclip.image_normalizer.std.copy_(0.5 + 0.1 * torch.rand(1, 768, generator=g))
    spec = unclip.latent
    stats = unclip.image_normalizer
    expected = float(torch.sqrt((stats.mean.detach() ** 2 + stats.std.detach() ** 2).sum()))
    assert spec.raw and spec.norm == pytest.approx(expected)
    unit = torch.nn.functional.normalize(torch.randn(3, 768, generator=g), dim=-1).numpy()
    scaled = prepare_latents(unclip, 0.4 * unit)              # shrunk regression outputs: direction kept
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), spec.norm, rtol=1e-5)
    np.testing.assert_allclose(scaled / spec.norm, unit, atol=1e-6)
    with pytest.warns(UserWarning, match=r"expects embeddings of norm ≈ 1[0-9.]+ .* got a median norm of 1"):
        spec.check(unit, "unclip")
    with pytest.warns(UserWarning, match=r"its CLIP model is probably not the head's"):
        prepare_latents(unclip, unit, raw_norm=3 * spec.norm)
    trained = UnCLIPImageHead.tiny(embed_dim=768, image_size=16, block_out_channels=(16, 32))
    np.testing.assert_array_equal(prepare_latents(trained, unit), unit)     # trained on the target space: as is
    ip = IPAdapterImageHead.tiny(embed_dim=1024, raw_embeddings=True)
    with pytest.raises(ValueError, match=r"field 'objective': the tiny-ip-adapter head reads raw"):
        prepare_latents(ip, np.ones((2, 1024)))
    np.testing.assert_allclose(np.linalg.norm(prepare_latents(ip, np.ones((2, 1024)), raw_norm=11.0), axis=1), 11.0,
                               rtol=1e-6)
    rng = np.random.default_rng(0)      # the target space measures the raw norm of its training images
    pixels = [rng.uniform(size=64) for _ in range(4)]
    stimuli = pd.DataFrame({"stimulus": list("abcd"), "pixels": pixels, "height": 8, "width": 8})
    space = TargetSpace("clip", column="pixels")
    space._clip = embedder
    space.fit(stimuli, list("abcd"))
    raw = embedder.embed_images([p.reshape(8, 8) for p in pixels], normalize=False)
    assert space.raw_norm_ == pytest.approx(float(np.linalg.norm(raw, axis=1).mean()), rel=1e-6)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert TargetSpace.from_state(space.state(), {}).raw_norm_ == space.raw_norm_


def test_token_level_targets_reach_a_token_head_as_tokens(embedder):
    """objective tokens=true: the aligner's targets are the image tokens flattened; a head that reads tokens
    (Shap-E) gets them reshaped to (n, n_tokens, width); a pooled-only head refuses them."""
    import pandas as pd

    from neurodecode.alignment.targets import TargetSpace
    from neurodecode.heads.base import prepare_latents
    from neurodecode.heads.meshes import ShapEMeshHead
    from neurodecode.heads.sdf import SDFMeshHead

    rng = np.random.default_rng(0)
    stimuli = pd.DataFrame({"stimulus": list("abcd"), "pixels": [rng.uniform(size=64) for _ in range(4)],
                            "height": 8, "width": 8})
    space = TargetSpace("clip", column="pixels", tokens=True)
    space._clip = embedder
    space.fit(stimuli, list("abcd"))
    Y = space.transform(stimuli, list("abcd"))
    T, W = space.token_shape_
    tokens = embedder.embed_images([p.reshape(8, 8) for p in stimuli["pixels"]], tokens=True)
    assert tokens.shape == (4, T, W) and Y.shape == (4, T * W) and space.dim == T * W
    np.testing.assert_allclose(Y, tokens.reshape(4, -1), atol=1e-6)
    assert TargetSpace.from_state(space.state(), {}).token_shape_ == (T, W)
    shap_e = ShapEMeshHead.tiny(embed_dim=W)
    read = prepare_latents(shap_e, Y, None, space.token_shape_)
    np.testing.assert_array_equal(read, tokens.reshape(4, T, W).astype(np.float32))
    assert len(shap_e.generate(read, num_inference_steps=2, grid_size=16, n_views=1, render_size=16).meshes) == 4
    with pytest.raises(ValueError, match=r"field 'objective.tokens': the objective's latents are image tokens "
                                         rf"\({T}, {W}\), but the SDF mesh head .* reads pooled"):
        prepare_latents(SDFMeshHead(embed_dim=W), Y, None, space.token_shape_)
    with pytest.raises(ValueError, match=r"field 'objective.tokens': token-level targets are CLIP image tokens"):
        TargetSpace("pca", tokens=True)
