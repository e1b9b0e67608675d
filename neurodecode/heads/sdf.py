"""A trainable 3D head: embedding → signed distance field → marching cubes (a small Shap-E-like implicit decoder).

:class:`SDFMeshHead` is an MLP over Fourier features of a 3D point, modulated (FiLM) by the embedding, that predicts
the point's signed distance to the object's surface (negative inside, clamped at ±``clamp`` as DeepSDF). ``fit``
trains it on (embedding, mesh) pairs — the distance targets of points sampled uniformly in the unit cube and near
each surface come from :func:`mesh_sdf` (nearest surface sample, sign by the generalised winding number, so any
closed mesh works without a ray-casting library). ``generate`` evaluates the field on a grid padded with an outside
border (closed meshes) and runs scikit-image's marching cubes; views are rendered with
:func:`~neurodecode.heads.meshes.render_mesh` as for Shap-E.

:func:`procedural_shapes` is the offline training set: trimesh primitives (sphere, box, cylinder, capsule, cone,
torus) under random anisotropic scaling, rotation and bending, centred in the unit cube, with their rendered views
(what an image embedding of the object sees).

Follows the head protocol: ``generate(latents (n, embed_dim)) -> MeshOutput``; deterministic (no sampling).
May import: ``neurodecode.core`` … ``neurodecode.alignment``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from neurodecode.core.estimators import trainer_settings
from neurodecode.core.registry import ConfigMixin

from neurodecode.heads.base import LatentSpec, MeshHead, render_mesh

__all__ = ["SHAPES", "SDFMeshHead", "check_mesh", "mesh_sdf", "procedural_shapes", "read_mesh"]

#: the primitive families of :func:`procedural_shapes`
SHAPES = ("sphere", "box", "cylinder", "capsule", "cone", "torus")


def _winding_number(mesh: Any, points: np.ndarray, block: int = 1024) -> np.ndarray:
    """Generalised winding number of ``points`` (n, 3) w.r.t. a closed mesh (≈1 inside, ≈0 outside; Jacobson
    et al. 2013: the sum of the triangles' signed solid angles / 4π, Van Oosterom & Strackee's formula)."""
    tri = torch.tensor(np.asarray(mesh.triangles), dtype=torch.float32)       # (F, 3, 3)
    pts = torch.tensor(np.asarray(points), dtype=torch.float32)
    out = []
    for start in range(0, len(pts), block):
        v = tri[None] - pts[start:start + block, None, None]                    # (n, F, 3, 3)
        a, b, c = v.unbind(2)
        la, lb, lc = v.norm(dim=-1).unbind(2)
        det = (a * torch.linalg.cross(b, c)).sum(-1)
        div = la * lb * lc + (a * b).sum(-1) * lc + (b * c).sum(-1) * la + (c * a).sum(-1) * lb
        out.append(torch.atan2(det, div).sum(1) / (2 * torch.pi))
    return torch.cat(out).numpy()


def check_mesh(mesh: Any, where: str) -> Any:
    """``mesh`` if a signed distance can be computed from it: a ``trimesh.Trimesh`` with faces, finite vertices,
    closed (watertight) and consistently wound; else a ``ValueError`` naming ``where`` and what is wrong. An open
    mesh has no inside: its winding number, and so every sign of the distance field, would be meaningless."""
    import trimesh

    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise ValueError(f"{where}: expected a non-empty triangle mesh (trimesh.Trimesh), got "
                         f"{type(mesh).__name__}" + (" without faces" if isinstance(mesh, trimesh.Trimesh) else ""))
    vertices = np.asarray(mesh.vertices)
    if not np.isfinite(vertices).all():
        raise ValueError(f"{where}: field 'vertices': expected finite coordinates, got "
                         f"{int((~np.isfinite(vertices)).any(axis=1).sum())} vertices with NaN/Inf")
    if not mesh.is_watertight:
        raise ValueError(f"{where}: expected a closed (watertight) mesh — a signed distance needs an inside — got "
                         f"one with {len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1))} boundary "
                         "edges; close its holes first (e.g. trimesh's fill_holes)")
    if not mesh.is_winding_consistent:
        raise ValueError(f"{where}: expected consistently wound faces, got a mesh whose neighbouring faces disagree "
                         "(trimesh's fix_normals repairs it)")
    return mesh


def read_mesh(path: str | Any) -> Any:
    """A mesh file (OBJ, PLY, STL, GLB, OFF, ...) read with trimesh without its repairs — merging or dropping
    vertices would hide a damaged file — and checked by :func:`check_mesh` (the file named in every error)."""
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mesh file")
    try:
        mesh = trimesh.load(str(path), force="mesh", process=False)
    except Exception as err:          # trimesh raises many types for damaged files
        raise ValueError(f"{path}: expected a mesh file trimesh can read, got {type(err).__name__}: {err}") from None
    check_mesh(mesh, str(path))
    return mesh


def mesh_sdf(mesh: Any, points: np.ndarray, n_surface: int = 10000, seed: int = 0) -> np.ndarray:
    """Signed distance (n,) of ``points`` (n, 3) to a closed mesh: negative inside. The distance is to the nearest
    of ``n_surface`` area-uniform surface samples (exact up to their spacing); the sign is the winding number's."""
    import trimesh
    from scipy.spatial import cKDTree

    surface, _ = trimesh.sample.sample_surface(mesh, n_surface, seed=seed)
    dist = cKDTree(surface).query(points)[0]
    return np.where(_winding_number(mesh, points) > 0.5, -dist, dist)


def _primitive(kind: str) -> Any:
    import trimesh

    if kind == "sphere":
        return trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    if kind == "box":
        return trimesh.creation.box(extents=(0.8, 0.8, 0.8))
    if kind == "cylinder":
        return trimesh.creation.cylinder(radius=0.4, height=0.9, sections=24)
    if kind == "capsule":
        return trimesh.creation.capsule(height=0.6, radius=0.3, count=(12, 12))
    if kind == "cone":
        return trimesh.creation.cone(radius=0.45, height=0.9, sections=24)
    if kind == "torus":
        return trimesh.creation.torus(major_radius=0.35, minor_radius=0.13, major_sections=24, minor_sections=12)
    raise ValueError(f"field 'kind': expected one of {SHAPES}, got {kind!r}")


def procedural_shapes(n: int, seed: int = 0, render_size: int = 32, n_views: int = 2) -> dict[str, Any]:
    """``n`` random objects: a primitive of :data:`SHAPES` (cycled), scaled anisotropically (0.6-1.4 per axis),
    bent along its height, rotated at random and centred in the unit cube (largest half-extent 0.75).

    Returns
    -------
    dict with ``meshes`` (list of trimesh.Trimesh), ``kinds`` (list of str) and ``renders``
    (n, n_views, render_size, render_size) grey views in [0, 1].
    """
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    meshes, kinds = [], []
    for i in range(n):
        kind = SHAPES[i % len(SHAPES)]
        m = _primitive(kind)
        v = np.asarray(m.vertices, dtype=np.float64) * rng.uniform(0.6, 1.4, 3)
        v[:, 0] += rng.uniform(-0.4, 0.4) * v[:, 2] ** 2                      # bend along the height
        v = v @ Rotation.random(random_state=rng.integers(1 << 31)).as_matrix().T
        v -= (v.max(0) + v.min(0)) / 2
        m.vertices = v * 0.75 / np.abs(v).max()
        meshes.append(m)
        kinds.append(kind)
    renders = np.stack([render_mesh(m, n_views, render_size) for m in meshes])
    return {"meshes": meshes, "kinds": kinds, "renders": renders}


def _fourier(x: torch.Tensor, n_freqs: int) -> torch.Tensor:
    freqs = 2.0 ** torch.arange(n_freqs, device=x.device, dtype=x.dtype) * torch.pi
    angles = x[..., None] * freqs                                               # (..., 3, n_freqs)
    return torch.cat([x, angles.sin().flatten(-2), angles.cos().flatten(-2)], dim=-1)


class SDFMeshHead(MeshHead, ConfigMixin, nn.Module):
    """Embedding → signed distance field (FiLM-modulated MLP over Fourier features) → mesh.

    Parameters
    ----------
    embed_dim : int
        Size of the embeddings it reads.
    hidden, depth : int
        MLP width and number of modulated layers.
    n_freqs : int
        Fourier frequencies per coordinate (π · 2^k).
    clamp : float
        Distances are learned clamped at ±clamp (the surface's neighbourhood matters).
    seed : int
    """

    trainable = True
    options = ("grid_size",)          # deterministic: no sampler settings

    def __init__(self, embed_dim: int = 32, hidden: int = 64, depth: int = 3, n_freqs: int = 4,
                 clamp: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed_dim, self.n_freqs, self.clamp = int(embed_dim), int(n_freqs), float(clamp)
        self.name = f"SDF mesh head ({depth}×{hidden})"
        self.inp = nn.Linear(3 + 6 * n_freqs, hidden)
        self.layers = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.film = nn.Linear(embed_dim, 2 * hidden * depth)
        self.out = nn.Linear(hidden, 1)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    @property
    def latent(self) -> LatentSpec:
        return LatentSpec(self.embed_dim, space="the embeddings its decoder was trained on (e.g. of rendered views)")

    @property
    def device(self) -> torch.device:
        return self.out.weight.device

    def forward(self, z: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Signed distances (B, n_points) of points (B, n_points, 3) for embeddings z (B, embed_dim)."""
        h = nn.functional.silu(self.inp(_fourier(points, self.n_freqs)))
        gamma, beta = self.film(z).view(len(z), 2, len(self.layers), 1, -1).unbind(1)
        for k, layer in enumerate(self.layers):
            h = h + nn.functional.silu(layer(h) * (1 + gamma[:, k]) + beta[:, k])
        return self.out(h)[..., 0]

    def fit(self, latents: Any, meshes: Sequence[Any], trainer: Mapping[str, Any] | None = None,
            n_points: int = 4096, chunk: int = 512, seed: int = 0) -> SDFMeshHead:
        """Train on (embedding, closed mesh) pairs: L1 on clamped distances of ``n_points`` per object (half
        uniform in [-1, 1]³, half within ~0.05 of the surface), served in chunks of ``chunk`` points (an epoch sees
        every point of every object once)."""
        import trimesh

        from neurodecode.core.training import Trainer

        z = torch.as_tensor(self.latent.check(latents, self.name))
        if len(meshes) != len(z):
            raise ValueError(f"field 'meshes': expected one mesh per embedding ({len(z)}), got {len(meshes)}")
        params = trainer_settings(trainer, {"max_epochs": 10, "batch_size": 16, "lr": 1e-3}, self.name, seed=seed,
                                  device=str(self.device))
        rng = np.random.default_rng(params["seed"])
        pts, sdf = [], []
        for i, mesh in enumerate(meshes):
            check_mesh(mesh, f"field 'meshes[{i}]'")
            near = trimesh.sample.sample_surface(mesh, n_points // 2, seed=int(rng.integers(1 << 31)))[0]
            p = np.concatenate([rng.uniform(-1, 1, (n_points - n_points // 2, 3)),
                                near + rng.normal(0, 0.05, near.shape)])
            pts.append(p)
            sdf.append(mesh_sdf(mesh, p, seed=i))
        n_chunks = max(1, n_points // chunk)
        P = torch.as_tensor(np.stack(pts)[:, :n_chunks * chunk], dtype=torch.float32).reshape(-1, chunk, 3)
        S = torch.as_tensor(np.stack(sdf)[:, :n_chunks * chunk], dtype=torch.float32).reshape(-1, chunk)
        data = torch.utils.data.TensorDataset(z.repeat_interleave(n_chunks, 0), P, S)
        params["batch_size"] = min(int(params["batch_size"]), len(z))
        c = self.clamp

        def objective(m: nn.Module, batch: Any) -> torch.Tensor:
            zb, pb, sb = batch
            return (m(zb, pb).clamp(-c, c) - sb.clamp(-c, c)).abs().mean()

        Trainer(**{**params, "drop_last": True}).fit(self, objective, data)
        return self.eval()

    @torch.no_grad()
    def field(self, latents: Any, grid_size: int = 32) -> np.ndarray:
        """Signed distances on a grid_size³ grid over [-1, 1]³: (n, grid_size, grid_size, grid_size)."""
        z = torch.as_tensor(self.latent.check(latents, self.name), device=self.device)
        axis = torch.linspace(-1, 1, grid_size, device=self.device)
        grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(1, -1, 3)
        self.eval()
        return np.stack([self(z[i:i + 1], grid)[0].reshape(grid_size, grid_size, grid_size).cpu().numpy()
                         for i in range(len(z))])

    def _meshes(self, z: np.ndarray, trials: list[str], seed: int, grid_size: int = 32) -> list[Any]:
        """Meshes of the fields on a ``grid_size``³ grid (deterministic: one field evaluation per trial)."""
        import trimesh
        from skimage.measure import marching_cubes

        fields = self.field(z, grid_size)
        meshes = []
        spacing = 2.0 / (grid_size - 1)
        for f in fields:
            padded = np.pad(f, 1, constant_values=max(float(f.max()), spacing))    # outside border: closed
            if padded.min() >= 0:                                                   # no inside: no surface
                meshes.append(trimesh.Trimesh(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)))
                continue
            verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(spacing,) * 3)
            meshes.append(trimesh.Trimesh(verts - 1 - spacing, faces[:, ::-1], process=False))
        return meshes
