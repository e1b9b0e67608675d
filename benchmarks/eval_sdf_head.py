"""The trainable SDF 3D head on procedural objects, beside the plain nearest-object reference, and the mind3d path.

1. **Procedural objects** (:func:`neurodecode.heads.sdf.procedural_shapes`: six trimesh primitive families under
   random scaling, bending and rotation): the embedding of an object is the PCA (16 components, fitted on the
   training objects) of its rendered view at 32 px. The SDF head is trained on ``--n-train`` objects'
   (embedding, mesh) pairs and decodes ``--n-test`` new objects from their embeddings. Reported: n-way top-1 (is the
   decoded mesh's Chamfer distance — on 1,500 surface samples — smallest to its own object?), the mean Chamfer to
   the own object and to the others, beside **the plain reference**: the training object whose embedding is most
   similar (cosine), and the tiny random Shap-E head (the 3D head before this one).
2. **mind3d_demo** (six fMRI-Shape samples): cortical-surface frames → ridge (leave one out) → the procedural PCA
   embedding of the object's real render → the SDF head → meshes; their rendered views against the true renders
   (2-way on render features, chance 0.5). Six samples train nothing: a run of the path.

About 2 minutes on 2 CPU cores.

    python benchmarks/eval_sdf_head.py [--n-train 120] [--n-test 30] [--epochs 30]
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

NAME = "eval_sdf_head"


def surface(mesh, n: int = 1500) -> np.ndarray:
    import trimesh

    return trimesh.sample.sample_surface(mesh, n, seed=0)[0] if len(mesh.faces) else np.full((n, 3), 9.0)


def nway(pred_meshes, true_meshes) -> tuple[float, float, float]:
    from neurodecode.evaluation.metrics import chamfer_distance

    P, T = [surface(m) for m in pred_meshes], [surface(m) for m in true_meshes]
    D = np.array([[chamfer_distance(p, t)[0] for t in T] for p in P])
    off = ~np.eye(len(D), dtype=bool)
    return float((D.argmin(1) == np.arange(len(D))).mean()), float(np.diag(D).mean()), float(D[off].mean())


def mind3d(root: Path, pca, scale: float, head) -> dict:
    from PIL import Image

    from neurodecode.alignment import RidgeAlignment
    from neurodecode.evaluation.metrics import score_outputs
    from neurodecode.loaders.precomputed import load_surface

    files = sorted(p for p in (root / "mind3d_demo").glob("*.npy") if p.name != "cmask.npy")
    ep = load_surface(files, mask=root / "mind3d_demo" / "cmask.npy")
    X = ep.data.mean(axis=2)
    renders = np.stack([np.asarray(Image.open(f.with_suffix(".png")).convert("L").resize((32, 32)), np.float32) / 255
                        for f in files])
    E = (pca.transform(renders.reshape(len(files), -1)) / scale).astype(np.float32)
    pred = np.stack([RidgeAlignment().fit(np.delete(X, i, 0), np.delete(E, i, 0)).predict(X[i:i + 1])[0]
                     for i in range(len(files))]).astype(np.float32)
    out = head.generate(pred, grid_size=32, n_views=1, render_size=32)
    scores = score_outputs("meshes", [surface(m, 256) for m in out.meshes], [surface(m, 256) for m in out.meshes],
                           render_features=(out.renders[:, 0].reshape(len(files), -1), renders.reshape(len(files), -1)))
    table = scores.table.set_index("metric")["value"]
    return {"n": len(files), "closed": sum(m.is_watertight for m in out.meshes), "2_way": float(table["2_way_top1"])}


def main() -> None:
    from neurodecode.evaluation.benchmarks import benchmark_parser, write_results

    p = benchmark_parser(__doc__.splitlines()[0], NAME)
    p.add_argument("--n-train", type=int, default=120)
    p.add_argument("--n-test", type=int, default=30)
    p.add_argument("--epochs", type=int, default=30)
    args = p.parse_args()
    from sklearn.decomposition import PCA

    from neurodecode.heads.meshes import ShapEMeshHead
    from neurodecode.heads.sdf import SDFMeshHead, procedural_shapes

    t0 = time.perf_counter()
    train = procedural_shapes(args.n_train, seed=args.seed, n_views=1)
    test = procedural_shapes(args.n_test, seed=args.seed + 1, n_views=1)
    flat = lambda r: r.reshape(len(r), -1)  # noqa: E731
    pca = PCA(16, random_state=0).fit(flat(train["renders"]))
    scale = float(pca.transform(flat(train["renders"])).std())
    Ztr = (pca.transform(flat(train["renders"])) / scale).astype(np.float32)
    Zte = (pca.transform(flat(test["renders"])) / scale).astype(np.float32)
    head = SDFMeshHead(embed_dim=16, seed=args.seed).fit(Ztr, train["meshes"], trainer={
        "max_epochs": args.epochs, "lr": 3e-3}, seed=args.seed)
    fit_s = time.perf_counter() - t0
    rows = {"SDF head (trained)": nway(head.generate(Zte, grid_size=32, n_views=1, render_size=32).meshes,
                                       test["meshes"])}
    unit = lambda a: a / np.linalg.norm(a, axis=1, keepdims=True)  # noqa: E731
    nearest = np.argmax(unit(Zte) @ unit(Ztr).T, axis=1)
    rows["nearest training object (plain)"] = nway([train["meshes"][i] for i in nearest], test["meshes"])
    shap_e = ShapEMeshHead.tiny(embed_dim=16)
    rows["tiny Shap-E (random, untrained)"] = nway(shap_e.generate(Zte, num_inference_steps=4, grid_size=24,
                                                                   n_views=1, render_size=32).meshes, test["meshes"])
    results: dict = {name: dict(zip(("top1", "own_chamfer", "others_chamfer"), r)) for name, r in rows.items()}
    print(f"procedural objects: {args.n_train} training, {args.n_test} held out ({len(set(train['kinds']))} "
          f"families); SDF head trained in {fit_s:.0f} s")
    print(f"  {'3D path':34s} {'top-1':>6s} {'own Chamfer':>12s} {'others':>8s}   (chance {1 / args.n_test:.3f})")
    for name, (top1, own, other) in rows.items():
        print(f"  {name:34s} {top1:6.3f} {own:12.3f} {other:8.3f}")
    if (args.data / "mind3d_demo").is_dir():
        res = mind3d(args.data, pca, scale, head)
        print(f"mind3d_demo through the SDF head: {res['n']} samples, {res['closed']} closed meshes, render-feature "
              f"2-way {res['2_way']:.3f} (chance 0.5)")
        results["mind3d"] = res
    else:
        print(f"{args.data / 'mind3d_demo'}: not found, the mind3d path is skipped")
    print(f"wrote {write_results(args, NAME, results)}")


if __name__ == "__main__":
    main()
