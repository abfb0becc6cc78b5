"""The Bayes limit of a generated benchmark: the exact posterior predictive of its true process.

For a task whose first n points are the context, the protocol of `amvi_jax.evaluate` scores
log q(y_T | x_T, context) summed over the targets T. The best any model can do in expectation
over the family's tasks is the true process's own predictive, with its prior over the task
parameters theta and its noise:

    p(y_T | context) = E_{theta ~ p(theta | context)} [ prod_{i in T} N(y_i; f_theta(x_i), s^2) ]
                     = Z(C + T) / Z(C),   Z(W) = E_{theta ~ p(theta)} [ prod_{i in W} N(...) ]

where C + T counts a context point that is also a target twice: Volpp et al.'s targets are ALL
points of the task, context included, and a model scores each of them as a new noisy
observation at that x (that is what `lmlhd` does with its particles). Two target sets are
reported per context size:

- `all` (the protocol of every table): targets = all N points, context included. An
  over-confident predictive can score a little above the oracle on the context points, since
  it has seen them; the oracle is exact only in expectation over unseen targets.
- `disjoint`: targets = the N - n points outside the context. Here the oracle is the best
  possible predictor in expectation, so no model can beat it on average: a model clearly
  above it means a bug in one of the two.

How each family's oracle is computed (`ORACLES`; a family without one is in `NO_ORACLE` with
the reason, and `check` turns that into a clear error):

- GP families: closed form. f ~ GP(0, k) with the generator's jitter, y = f + noise; the
  posterior of f at the task's points given the context, then a Gaussian density of the
  targets with fresh noise (`all`), or the chain rule log N(y; 0, K + s^2 I) -
  log N(y_C; 0, K_CC + s^2 I) (`disjoint`).
- Parametric families: f = alpha g_phi(x) + h_phi(x) with alpha uniform and the rest phi on
  a box: alpha is integrated in closed form (a Gaussian integral over an interval), phi by
  composite Gauss-Legendre quadrature over its prior box; a mixture family (linesine1d) sums
  its components with their prior weights. Deterministic; `tests/data/test_oracle.py` checks
  that doubling the cells moves no task by 0.01 nats and that Monte Carlo over the prior
  agrees.

All in float64 numpy: log Z over 64 points with noise 0.25 is a difference of numbers in the
hundreds, which float32 would round at the 0.01-nat level.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
from scipy.special import log_ndtr, logsumexp

from amvi_jax.data import families

TARGETS = {"all": "lmlhd_oracle", "disjoint": "lmlhd_oracle_disjoint"}  # -> per_task key
_LOG_2PI = math.log(2.0 * math.pi)


class NoOracleError(ValueError):
    """The benchmark has no known generative process, so there is no Bayes limit."""


@dataclasses.dataclass(frozen=True)
class Component:
    """One mixture component of a parametric family: f = alpha g(x, phi) + h(x, phi).

    weight: prior probability of the component; grid: {name: (low, high)} of the uniform phi
    (integrated by quadrature, one axis per name); linear: (low, high) of the uniform alpha
    (integrated in closed form); g, h: (x [N], phi {name: [G, 1]}) -> [G, N] or broadcastable.
    """

    weight: float
    grid: dict[str, tuple[float, float]]
    linear: tuple[float, float]
    g: Callable
    h: Callable


def _bounds(family: str, *names: str) -> dict[str, tuple[float, float]]:
    return {k: families.PARAMETER_BOUNDS[family][k] for k in names}


def _sine(family: str, weight: float) -> Component:
    return Component(weight, _bounds(family, "phi"), families.PARAMETER_BOUNDS[family]["A"],
                     g=lambda x, p: np.sin(x + p["phi"]), h=lambda x, p: 0.0)


def _line(family: str, weight: float) -> Component:
    return Component(weight, _bounds(family, "m"), families.PARAMETER_BOUNDS[family]["b"],
                     g=lambda x, p: np.ones_like(x), h=lambda x, p: p["m"] * x)


# The generators' parameterisations (families.family_function), written as alpha g + h.
PARAMETRIC: dict[str, tuple[Component, ...]] = {
    "sinusoid1d": (_sine("sinusoid1d", 1.0),),
    # c ~ U(0, 1) picks the sine when c < 0.5: two components of prior weight 1/2.
    "linesine1d": (_sine("linesine1d", 0.5), _line("linesine1d", 0.5)),
    "quadratic1d": (Component(
        1.0, _bounds("quadratic1d", "a", "b"), families.PARAMETER_BOUNDS["quadratic1d"]["c"],
        g=lambda x, p: np.ones_like(x), h=lambda x, p: (p["a"] * (x + p["b"])) ** 2),),
    "affine1d": (_line("affine1d", 1.0),),
}
# Quadrature cells per grid axis and Gauss-Legendre nodes per cell, by the number of axes, at
# noise 0.25 and 64 points; more points or less noise narrow the posterior, and the cells
# grow with it (`_cells`). Measured on 16 test tasks of each family at n in {0, 1, 4, 16},
# against 2x finer grids: the largest error at half these cells was 6e-5 nats (1-d,
# linesine1d) and 1e-4 nats (2-d, quadratic1d at 64 cells); tests/data/test_oracle.py checks
# that doubling them moves no task by 0.01 nats.
CELLS = {1: 512, 2: 80}
ORDER = {1: 4, 2: 3}


def _cells(dims: int, noise_std: float, num_points: int) -> int:
    """Cells per axis: posterior widths scale as noise_std / sqrt(points)."""
    return math.ceil(CELLS[dims] * max(1.0, 0.25 / noise_std * math.sqrt(num_points / 64)))


def _gp_log_predictive(family: str, x: np.ndarray, y: np.ndarray, n: int, noise_std: float,
                       targets: str) -> float:
    """One task of a GP family: x, y [N] float64 -> log p(y_targets | first n points)."""
    num_points = x.shape[0]
    gram = families.KERNELS[family](x[:, None] - x[None, :]) + families.GP_JITTER * np.eye(
        num_points)
    var = noise_std**2

    def log_normal(v: np.ndarray, cov: np.ndarray) -> float:
        chol = np.linalg.cholesky(cov)
        alpha = np.linalg.solve(chol, v)
        return float(-0.5 * alpha @ alpha - np.log(np.diag(chol)).sum()
                     - 0.5 * v.shape[0] * _LOG_2PI)

    if targets == "disjoint":
        whole = log_normal(y, gram + var * np.eye(num_points))
        return whole - (log_normal(y[:n], gram[:n, :n] + var * np.eye(n)) if n else 0.0)
    mean, cov = np.zeros(num_points), gram
    if n:
        chol = np.linalg.cholesky(gram[:n, :n] + var * np.eye(n))
        a = np.linalg.solve(chol, gram[:n])  # [n, N]: L^-1 K_CN
        mean = a.T @ np.linalg.solve(chol, y[:n])
        cov = gram - a.T @ a
    return log_normal(y - mean, cov + var * np.eye(num_points))


def _gauss_legendre(low: float, high: float, cells: int, order: int):
    """Composite Gauss-Legendre nodes and weights on [low, high]; weights sum to 1 (the
    uniform prior's density times the cell measure)."""
    nodes, weights = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(low, high, cells + 1)
    half = 0.5 * np.diff(edges)[:, None]
    points = (0.5 * (edges[:-1] + edges[1:]))[:, None] + half * nodes[None]
    return points.ravel(), (half * weights[None]).ravel() / (high - low)


def _component_log_z(comp: Component, x: np.ndarray, y: np.ndarray, w: np.ndarray,
                     noise_std: float, cells: int | None, chunk: int = 1 << 15) -> np.ndarray:
    """log Z(w) of one component for weight vectors w [W, N] (how often each point counts).

    Z(w) = E_{phi, alpha ~ prior} prod_i N(y_i; alpha g_i + h_i, s^2)^{w_i}; alpha closed form:
    sum_i w_i (r_i - alpha g_i)^2 = S_gg (alpha - mu)^2 + S_rr - S_gr^2 / S_gg with r = y - h.
    """
    dims = len(comp.grid)
    axes = [_gauss_legendre(lo, hi, cells or _cells(dims, noise_std, x.shape[0]), ORDER[dims])
            for lo, hi in comp.grid.values()]
    nodes = np.stack(np.meshgrid(*[a[0] for a in axes], indexing="ij"), -1).reshape(-1, dims)
    log_q = sum(np.meshgrid(*[np.log(a[1]) for a in axes], indexing="ij")).ravel()
    var = noise_std**2
    count = w.sum(1)  # [W]
    lo, hi = comp.linear
    parts = []
    for start in range(0, nodes.shape[0], chunk):
        phi = {k: nodes[start:start + chunk, j:j + 1] for j, k in enumerate(comp.grid)}
        g = np.broadcast_to(comp.g(x[None], phi), (phi[next(iter(phi))].shape[0], x.shape[0]))
        r = y[None] - comp.h(x[None], phi)
        s_gg, s_gr, s_rr = (g * g) @ w.T, (g * r) @ w.T, (r * r) @ w.T  # [G, W]
        has = s_gg > 1e-12  # no point with weight (or g = 0 there): alpha stays its prior
        safe = np.where(has, s_gg, 1.0)
        mu, scale = s_gr / safe, noise_std / np.sqrt(safe)
        resid = np.where(has, s_rr - s_gr * mu, s_rr)
        a, b = (lo - mu) / scale, (hi - mu) / scale
        # log(Phi(b) - Phi(a)), in the tail that keeps it accurate (a > 0: reflect).
        flip = a > 0
        a, b = np.where(flip, -b, a), np.where(flip, -a, b)
        la, lb = log_ndtr(a), log_ndtr(b)
        log_mass = lb + np.log1p(-np.exp(la - lb))
        log_alpha = np.where(has, 0.5 * _LOG_2PI + np.log(scale) + log_mass - math.log(hi - lo),
                             0.0)
        parts.append(log_q[start:start + chunk, None] - 0.5 * resid / var + log_alpha)
    return (logsumexp(np.concatenate(parts), axis=0) + math.log(comp.weight)
            - 0.5 * count * (_LOG_2PI + math.log(var)))


def _parametric_log_z(family: str, x, y, w, noise_std, cells=None) -> np.ndarray:
    """log Z(w) [W] of a parametric family (its components summed)."""
    return logsumexp(np.stack([_component_log_z(c, x, y, w, noise_std, cells)
                               for c in PARAMETRIC[family]]), axis=0)


ORACLES = {**{f: "quadrature" for f in PARAMETRIC},
           **{f: "closed form" for f in families.GP_FAMILIES}}
NO_ORACLE = {
    "digits": "real images with no known generative process",
    "npz": "tasks from a file, whose generative process the library does not know",
    "tfds": "real images with no known generative process",
}


def reason_missing(benchmark: str) -> str | None:
    """None when `benchmark` has an oracle, else why not (for a table's "–")."""
    if benchmark in ORACLES:
        return None
    if benchmark in NO_ORACLE:
        return NO_ORACLE[benchmark]
    if benchmark.endswith(".npz"):
        return NO_ORACLE["npz"]
    if benchmark.startswith("tfds:"):
        return NO_ORACLE["tfds"]
    return f"unknown benchmark; the generated families with an oracle are {', '.join(ORACLES)}"


def check(benchmark: str, noise_std: float) -> None:
    """Raises NoOracleError, saying why, if the benchmark has no Bayes limit to compute."""
    why = reason_missing(benchmark)
    if why is not None:
        raise NoOracleError(f"No Bayes limit (oracle) for benchmark {benchmark!r}: {why}.")
    if not (noise_std > 0 and math.isfinite(noise_std)):
        raise NoOracleError(f"No Bayes limit for {benchmark!r} with data.noise_std={noise_std}: "
                            "noise-free targets have no predictive density.")


def per_task(benchmark: str, x, y, context_sizes, noise_std: float,
             cells: int | None = None) -> dict[int, dict[str, np.ndarray]]:
    """The oracle of every task and context size.

    Args:
      benchmark: a generated family (ORACLES).
      x, y: [T, N, 1] the tasks (a TaskSet's arrays); the context is the first n points.
      context_sizes: n values, each in 0..N.
      noise_std: the data's noise std (data.noise_std).
      cells: quadrature cells per axis (parametric families; None: CELLS).

    Returns:
      {n: {"lmlhd_oracle": [T], "lmlhd_oracle_disjoint": [T]}} float64: log p(targets | first
      n points) summed over the targets, all N points / the N - n others.

    Raises:
      NoOracleError: the benchmark has none (the message says why); ValueError: bad shapes or
      context sizes.
    """
    check(benchmark, noise_std)
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 3 or y.shape != x.shape or x.shape[-1] != 1:
        raise ValueError(f"oracle of {benchmark!r}: expected x and y of shape [T, N, 1], got "
                         f"{x.shape} and {y.shape}.")
    num_points = x.shape[1]
    sizes = [int(n) for n in context_sizes]
    if any(not 0 <= n <= num_points for n in sizes):
        raise ValueError(f"context sizes {sizes} must lie in 0..{num_points} (points per task).")
    out = {n: {"lmlhd_oracle": np.empty(x.shape[0]), "lmlhd_oracle_disjoint": np.empty(x.shape[0])}
           for n in sizes}
    ones = np.ones(num_points)
    for t in range(x.shape[0]):
        xt, yt = x[t, :, 0], y[t, :, 0]
        if benchmark in families.GP_FAMILIES:
            for n in sizes:
                for target, key in TARGETS.items():
                    out[n][key][t] = _gp_log_predictive(benchmark, xt, yt, n, noise_std, target)
            continue
        context = [(np.arange(num_points) < n).astype(np.float64) for n in sizes]
        # Rows: all points once, then per n the context alone and context + all points.
        w = np.stack([ones, *context, *[c + ones for c in context]])
        log_z = _parametric_log_z(benchmark, xt, yt, w, noise_std, cells)
        k = len(sizes)
        for i, n in enumerate(sizes):
            out[n]["lmlhd_oracle"][t] = log_z[1 + k + i] - log_z[1 + i]
            out[n]["lmlhd_oracle_disjoint"][t] = log_z[0] - log_z[1 + i]
    return out


def summarize(oracle: dict[int, dict[str, np.ndarray]], num_points: int) -> dict:
    """Medians over tasks, as `evaluate.summarize` reports a method: {str(n): {...}}."""
    return {str(n): {"lmlhd_oracle_median": float(np.median(m["lmlhd_oracle"])),
                     "lmlhd_oracle_median_per_point":
                         float(np.median(m["lmlhd_oracle"])) / num_points,
                     "lmlhd_oracle_disjoint_median":
                         float(np.median(m["lmlhd_oracle_disjoint"]))}
            for n, m in oracle.items()}
