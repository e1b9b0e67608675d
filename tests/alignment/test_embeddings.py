"""Stimulus embeddings with a tiny open_clip model built from a local config (no download)."""

import numpy as np
import pandas as pd
import pytest
import torch

from neurodecode.alignment.embeddings import OpenCLIPEmbedder, embed_stimuli

def images(n=5, seed=0):
    return list(np.random.default_rng(seed).uniform(size=(n, 28, 28)))


def test_image_and_text_embeddings_with_cache(embedder, tmp_path):
    imgs = images()
    first = embedder.embed_images(imgs)
    assert first.shape == (5, 32) and np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert (embedder.hits, embedder.misses) == (0, 5)
    again = embedder.embed_images(imgs[::-1])
    assert (embedder.hits, embedder.misses) == (5, 5)
    np.testing.assert_array_equal(again, first[::-1])
    new = embedder.embed_images(imgs[:2] + images(1, seed=9))
    assert (embedder.hits, embedder.misses) == (7, 6) and not np.allclose(new[2], first[0])
    tokens = embedder.embed_images(imgs[:2], tokens=True)
    assert tokens.shape == (2, 16, 64)  # (32 / 8)^2 patches, width 64
    texts = embedder.embed_texts(["a face", "a house", "a face"])
    assert texts.shape == (3, 32) and np.allclose(texts[0], texts[2])
    files = []
    for k, im in enumerate(imgs[:2]):
        from PIL import Image

        Image.fromarray((im * 255).astype(np.uint8)).save(tmp_path / f"s{k}.png")
        files.append(tmp_path / f"s{k}.png")
    assert embedder.embed_images(files).shape == (2, 32)
    with pytest.raises(FileNotFoundError, match="missing.png: no such stimulus image"):
        embedder.embed_images([tmp_path / "missing.png"])


def test_random_models_do_not_share_cache_entries(tiny_model, tmp_path):
    torch.manual_seed(0)
    a = OpenCLIPEmbedder(tiny_model, pretrained=None, cache_dir=tmp_path)
    torch.manual_seed(1)
    b = OpenCLIPEmbedder(tiny_model, pretrained=None, cache_dir=tmp_path)
    assert a.cache_dir != b.cache_dir
    imgs = images(2)
    assert not np.allclose(a.embed_images(imgs), b.embed_images(imgs)) and b.misses == 2


def test_embed_stimuli_targets(embedder):
    stim = pd.DataFrame({"stimulus": [f"s{k}" for k in range(6)],
                         "pixels": [im.ravel() for im in images(6)], "height": 28, "width": 28,
                         "caption": ["a six", "a nine"] * 3})
    ids = ["s3", "s0", "s3"]
    np.testing.assert_array_equal(embed_stimuli(stim, "pixels", ids=ids), np.stack([images(6)[i].ravel() for i in (3, 0, 3)]))
    pca = embed_stimuli(stim, "pca", ids=ids, pca_components=3, pca_fit_ids=["s0", "s1", "s2", "s4"])
    assert pca.shape == (3, 3)
    clip = embed_stimuli(stim, embedder, ids=ids, column="pixels")
    np.testing.assert_allclose(clip, embedder.embed_images([images(6)[i] for i in (3, 0, 3)]))
    assert embed_stimuli(stim, embedder, ids=ids, column="caption").shape == (3, 32)
    assert embed_stimuli(stim, lambda rows: np.ones((len(rows), 4)), ids=ids).shape == (3, 4)
    with pytest.raises(KeyError, match=r"expected stimulus ids of the stimulus table, got 1 without a row \(so without an embedding\), e.g. \['s9'\]"):
        embed_stimuli(stim, "pixels", ids=["s0", "s9"])
    with pytest.raises(ValueError, match=r"expected the function to return one row per stimulus \(3\)"):
        embed_stimuli(stim, lambda rows: np.ones((2, 4)), ids=ids)
    with pytest.raises(ValueError, match=r"field 'target': expected 'pixels', 'pca', an OpenCLIPEmbedder or a function, got 'dino'"):
        embed_stimuli(stim, "dino")


def test_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match=r"field 'model'/'pretrained': expected an open_clip model and tag"):
        OpenCLIPEmbedder("no-such-model", pretrained=None, cache_dir=tmp_path)


@pytest.mark.weights
def test_real_pretrained_weights(tmp_path):
    """The real loading path: open_clip's pretrained tag (skipped where the hub cannot be reached)."""
    try:
        emb = OpenCLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    except Exception as err:  # offline (HF_HUB_OFFLINE=1 in the tests): no weights
        pytest.skip(f"ViT-B-32 laion2b_s34b_b79k weights not available: {str(err)[:120]}")
    cat, dog, car = emb.embed_texts(["a photo of a cat", "a photo of a dog", "a photo of a car"])
    assert emb.embed_dim == 512 and cat @ dog > cat @ car


def test_missing_pretrained_weights_offline_say_which_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    try:
        OpenCLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k", cache_dir=tmp_path)
    except RuntimeError as err:
        assert "could not load the open_clip weights 'ViT-B-32'/'laion2b_s34b_b79k'" in str(err)
        assert "create_model_and_transforms('ViT-B-32', pretrained='laion2b_s34b_b79k')" in str(err)
    else:
        pytest.skip("the weights are in this machine's cache")
