"""The trainable 3D head: exact-enough signed distances of meshes, procedural objects, and a decoder that learned —
meshes decoded from held-out objects' embeddings are closest to their own object."""

import numpy as np
import pytest

from neurodecode.heads.sdf import SHAPES, SDFMeshHead, mesh_sdf, procedural_shapes


def test_mesh_sdf_matches_the_analytic_distance_of_a_sphere():
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.5)
    pts = np.random.default_rng(0).uniform(-1, 1, (500, 3))
    want = np.linalg.norm(pts, axis=1) - 0.5
    got = mesh_sdf(sphere, pts)
    assert np.abs(got - want).max() < 0.02 and np.array_equal(np.sign(got), np.sign(want))


def test_procedural_shapes_are_closed_seeded_and_inside_the_unit_cube():
    a, b = procedural_shapes(12, seed=3, render_size=24), procedural_shapes(12, seed=3, render_size=24)
    assert a["kinds"] == list(SHAPES) * 2 and a["renders"].shape == (12, 2, 24, 24)
    for m, m2 in zip(a["meshes"], b["meshes"]):
        assert m.is_watertight and np.abs(m.vertices).max() <= 0.75 + 1e-9
        np.testing.assert_array_equal(m.vertices, m2.vertices)
    assert not np.allclose(a["meshes"][0].vertices, procedural_shapes(1, seed=4)["meshes"][0].vertices)


def _surface(mesh, n=1500):
    import trimesh

    return trimesh.sample.sample_surface(mesh, n, seed=0)[0] if len(mesh.faces) else np.full((n, 3), 9.0)


@pytest.mark.slow
def test_sdf_head_decodes_held_out_objects_closest_to_their_own_shape():
    """Trained on 60 procedural objects' (render embedding, mesh) pairs, decoding 12 new objects from their render
    embeddings: each decoded mesh's Chamfer distance to its own object is the smallest among the 12 far above
    chance (1/12)."""
    from sklearn.decomposition import PCA

    from neurodecode.evaluation.metrics import chamfer_distance

    train, test = procedural_shapes(60, seed=0, n_views=1), procedural_shapes(12, seed=1, n_views=1)
    pca = PCA(16, random_state=0).fit(train["renders"].reshape(60, -1))
    scale = pca.transform(train["renders"].reshape(60, -1)).std()
    embed = lambda r: (pca.transform(r.reshape(len(r), -1)) / scale).astype(np.float32)   # noqa: E731
    head = SDFMeshHead(embed_dim=16, seed=0)
    with pytest.raises(ValueError, match=r"field 'meshes': expected one mesh per embedding \(60\), got 3"):
        head.fit(embed(train["renders"]), train["meshes"][:3])
    head.fit(embed(train["renders"]), train["meshes"], trainer={"max_epochs": 20, "lr": 3e-3, "progress": False},
             n_points=2048)
    out = head.generate(embed(test["renders"]), grid_size=28, n_views=2, render_size=32)
    assert len(out.meshes) == 12 and out.renders.shape == (12, 2, 32, 32)
    assert all(m.is_watertight and len(m.faces) for m in out.meshes)
    D = np.array([[chamfer_distance(_surface(p), _surface(t))[0] for t in test["meshes"]] for p in out.meshes])
    top1 = float((D.argmin(1) == np.arange(12)).mean())
    print(f"\nSDF head, 12 held-out procedural objects: 12-way top-1 {top1:.3f} (chance 0.083), own Chamfer "
          f"{np.diag(D).mean():.3f} vs others {D[~np.eye(12, dtype=bool)].mean():.3f}")
    assert top1 >= 0.33 and np.diag(D).mean() < D[~np.eye(12, dtype=bool)].mean()
    again = SDFMeshHead(**head.config)
    np.testing.assert_array_equal(again.generate(embed(test["renders"][:1]), grid_size=16).renders.shape, (1, 4, 128, 128))


def test_open_or_damaged_meshes_are_refused_before_training(tmp_path):
    """An open mesh has no inside (every sign of its distance field would be noise); a NaN vertex that trimesh's
    repairs would drop silently is named with its file."""
    import trimesh

    from neurodecode.heads.sdf import check_mesh, read_mesh

    box = trimesh.creation.box()
    assert check_mesh(box, "box") is box
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)      # one side missing
    with pytest.raises(ValueError, match=r"open: expected a closed \(watertight\) mesh .* 4 boundary edges"):
        check_mesh(open_box, "open")
    with pytest.raises(ValueError, match=r"field 'meshes\[1\]': expected a closed"):
        SDFMeshHead(embed_dim=4).fit(np.zeros((2, 4), np.float32), [box, open_box])
    flipped = box.copy()
    flipped.faces[0] = flipped.faces[0][::-1]
    with pytest.raises(ValueError, match="consistently wound"):
        check_mesh(flipped, "flipped")
    path = tmp_path / "nan.obj"
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices] + [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in box.faces]
    lines[0] = "v nan 0.5 0.5"
    path.write_text("\n".join(lines))
    with pytest.raises(ValueError, match=r"nan.obj: field 'vertices': expected finite coordinates, got 1 vertices"):
        read_mesh(path)
    good = tmp_path / "box.obj"
    box.export(good)
    assert len(read_mesh(good).faces) == 12
    with pytest.raises(FileNotFoundError, match="no such mesh file"):
        read_mesh(tmp_path / "missing.obj")
