"""Storage of the golden vectors (numbers from running the authors' public code; see PROVENANCE.md).

One ``.npz`` per case. ``meta`` is a JSON string: the case's settings, and for every weight its recipe and a hash.
The other keys are ``<dtype>/<quantity>`` with dtype ``f64`` or ``f32`` (the precision the authors' code ran in):
``input``, ``target``, ``output``, ``loss``, ``spikes/<layer>`` (spike counts of a layer per sample and step),
``grad/<name>``.

Weights are not stored as numbers: each is drawn from a frozen generator (numpy's legacy ``RandomState``, whose
streams numpy keeps fixed across versions) with the distribution of the authors' initialisation, rounded to float32
(so the float64 and float32 runs use the same values), and recorded as ``{dist, seed, a, b, shape, sha256}``; the
tests rebuild them and check the hash. A few hundred thousand weights per network would otherwise take most of the
budget. Gradients of more than ``SKETCH_ABOVE`` elements are stored as a sketch (``sketch`` below) for the same reason.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SKETCH_ABOVE = 16384
N_PROJECTIONS = 16
N_SAMPLES = 256
SKETCH_SEED = 20240901


def draw(dist: str, seed: int, shape, a: float, b: float) -> np.ndarray:
    """A frozen draw as float32-exact float64: ``normal`` (mean a, std b) or ``uniform`` [a, b)."""
    rs = np.random.RandomState(seed)
    n = int(np.prod(shape)) if len(shape) else 1
    if dist == "normal":
        x = a + b * rs.standard_normal(n)
    elif dist == "uniform":
        x = a + (b - a) * rs.random_sample(n)
    elif dist == "const":
        x = np.full(n, a)
    else:
        raise ValueError(dist)
    return x.astype(np.float32).astype(np.float64).reshape(shape)


def sha256(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype="<f4").tobytes()).hexdigest()[:24]


def recipe(dist: str, seed: int, shape, a: float, b: float) -> tuple[dict, np.ndarray]:
    value = draw(dist, seed, tuple(shape), a, b)
    return {"dist": dist, "seed": seed, "shape": list(shape), "a": a, "b": b, "sha256": sha256(value)}, value


def rebuild(rec: dict) -> np.ndarray:
    value = draw(rec["dist"], rec["seed"], tuple(rec["shape"]), rec["a"], rec["b"])
    if sha256(value) != rec["sha256"]:
        raise AssertionError(f"the frozen draw {rec} does not reproduce its hash")
    return value


def _signs(n: int, r: int) -> np.ndarray:
    """The r-th +-1 vector of length n: a bit of a multiplicative hash of the index."""
    h = np.arange(n, dtype=np.uint64) * np.uint64((0x9E3779B97F4A7C15 + 2 * r + 1) % 2**64)
    return ((h >> np.uint64(40)) & np.uint64(1)).astype(np.float64) * 2 - 1


def sketch(g: np.ndarray) -> dict[str, np.ndarray]:
    """A gradient too large to store whole: sums over the first axis and over the others, 16 fixed +-1
    projections a_r^T G b_r (G the gradient as [first axis, the rest]; every entry weighted +-1), 256 entries at
    fixed random places, and the largest entry with its place. Every component is a linear function of the gradient
    (exact up to summation order), so a wrong entry anywhere shows in the sums and projections."""
    g = np.asarray(g, dtype=np.float64)
    flat, rows = g.reshape(-1), g.reshape(g.shape[0], -1)
    n = flat.size
    idx = np.unique(np.random.RandomState(SKETCH_SEED).randint(0, n, size=N_SAMPLES))
    top = int(np.argmax(np.abs(flat)))
    return {"sum0": g.sum(0), "sum_rest": rows.sum(1),
            "proj": np.array([_signs(rows.shape[0], r) @ rows @ _signs(rows.shape[1], N_PROJECTIONS + r)
                              for r in range(N_PROJECTIONS)]),
            "samples": flat[idx], "argmax": np.array([top]), "max": flat[top:top + 1]}


def grad_entries(name: str, g: np.ndarray) -> dict[str, np.ndarray]:
    if g.size > SKETCH_ABOVE:
        return {f"grad/{name}/sketch/{k}": v for k, v in sketch(g).items()}
    return {f"grad/{name}": np.asarray(g, dtype=np.float64)}


def save(path: Path, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    path.write_bytes(buf.getvalue())


class Case:
    """A stored case: ``case.meta``, ``case[key]``, ``case.weight(name)`` (rebuilt from its recipe)."""

    def __init__(self, path: Path):
        with np.load(path) as z:
            self.arrays = {k: z[k] for k in z.files}
        self.meta = json.loads(str(self.arrays.pop("meta")))
        self.path = path

    def __getitem__(self, key: str) -> np.ndarray:
        return self.arrays[key]

    def __contains__(self, key: str) -> bool:
        return key in self.arrays

    def weight(self, name: str) -> np.ndarray:
        return rebuild(self.meta["weights"][name])

    def grad_names(self, dt: str) -> list[str]:
        names = {k[len(dt) + 6:].split("/sketch/")[0] for k in self.arrays if k.startswith(f"{dt}/grad/")}
        return sorted(names)

    def keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.arrays if k.startswith(prefix))


def load(paper: str, case: str) -> Case:
    return Case(HERE / paper / f"{case}.npz")


def max_rel(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected| (the max-norm relative difference; 0/0 = 0)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return diff / scale if scale > 0 else diff


def compare_grad(case: Case, dt: str, name: str, g: np.ndarray) -> float:
    """The max-norm relative difference of ``g`` against the stored gradient ``name`` (whole or sketched: the worst
    component)."""
    g = np.asarray(g, np.float64)
    key = f"{dt}/grad/{name}"
    if key in case:
        return max_rel(g, case[key])
    ours = sketch(g)
    worst = 0.0
    for comp in ("sum0", "sum_rest", "proj", "samples"):
        worst = max(worst, max_rel(ours[comp], case[f"{key}/sketch/{comp}"]))
    top = int(case[f"{key}/sketch/argmax"][0])  # the stored largest entry, at its place
    return max(worst, max_rel(g.reshape(-1)[top:top + 1], case[f"{key}/sketch/max"]))
