"""Unnormalised test densities whose log normaliser log Z is known in closed form.

All targets are members of ONE family with array parameters, in DIM = 5 dimensions,

    log gamma(z) = log_c + logsumexp_m [log w_m + log N(z; mu_m, (L_m L_m^T)^-1)]
                   + sum_n mask_n log N(y_n; a_n . z + offset, noise^2),

so that a training graph compiled once can be vmapped over targets (compile time is most of
what these tests cost on a small CPU). Lower-dimensional problems are padded with N(0, 1) in
the unused coordinates, which leaves Z unchanged. Reference values are computed in float64
numpy, independently of the jnp density the samplers see.

Each target comes with a deliberately imperfect q0: off-centre and mis-scaled, so the diffusion
has work to do and any error in the whitening Jacobian (sum log q0_scale != 0) shows in log Z-hat.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

DIM = 5
NUM_COMPONENTS = 2
NUM_POINTS = 12
_LOG_2PI = float(np.log(2 * np.pi))


class Target(NamedTuple):
    params: dict  # arrays of the family, see `log_prob`
    log_z: float
    q0_mean: np.ndarray  # [DIM] float32
    q0_scale: np.ndarray  # [DIM] float32

    @property
    def dim(self) -> int:
        return DIM

    @property
    def log_prob(self):
        """z [DIM] -> scalar log gamma(z)."""
        return functools.partial(log_prob, self.params)


def log_prob(params: dict, z: jax.Array) -> jax.Array:
    """The family's log gamma(z) for one z [DIM]; casts its parameters to z's dtype."""
    p = jax.tree.map(lambda x: jnp.asarray(x, z.dtype), params)
    white = jnp.einsum("mij,mi->mj", p["prec_chol"], z - p["means"])  # L_m^T (z - mu_m)
    comp = -0.5 * jnp.sum(white**2, axis=-1) + p["comp_const"]
    resid = (p["y"] - p["a"] @ z - p["offset"]) / p["noise"]
    log_lik = -0.5 * jnp.sum(p["mask"] * (resid**2 + 2 * jnp.log(p["noise"]) + _LOG_2PI))
    return p["log_c"] + jax.scipy.special.logsumexp(comp) + log_lik


def _params(log_c, weights, means, covs, a=None, y=None, noise=1.0, offset=0.0) -> dict:
    """float32 family parameters from float64 mixture moments and optional regression data."""
    chols, consts = [], []
    for w, cov in zip(weights, covs, strict=True):
        chol = np.linalg.cholesky(np.linalg.inv(cov))
        chols.append(chol)
        consts.append(np.log(w) + np.sum(np.log(np.diag(chol))) - 0.5 * DIM * _LOG_2PI)
    mask = np.zeros(NUM_POINTS) if a is None else np.ones(NUM_POINTS)
    f32 = lambda x: np.asarray(x, np.float32)
    return dict(
        log_c=f32(log_c), means=f32(means), prec_chol=f32(chols), comp_const=f32(consts),
        a=f32(np.zeros((NUM_POINTS, DIM)) if a is None else a),
        y=f32(np.zeros(NUM_POINTS) if y is None else y),
        mask=f32(mask), noise=f32(noise), offset=f32(offset),
    )


def _pad(x, fill):
    return np.concatenate([x, np.full(DIM - len(x), fill)]).astype(np.float32)


def _pad_cov(cov):
    out = np.eye(DIM)
    out[: len(cov), : len(cov)] = cov
    return out


def correlated_gaussian(log_z: float = 2.5) -> Target:
    """exp(log_z) N(z; mu, Sigma): correlations up to 0.6, covariance eigenvalues 0.1 .. 2
    (condition number 20); q0 = N(0, 0.8^2 I) is ~7 nats of KL away."""
    mu = np.array([1.0, -0.5, 0.3, 1.5, 0.0])
    cov = np.array([
        [0.17, 0.08, -0.05, 0.29, 0.09],
        [0.08, 0.51, 0.19, 0.30, 0.38],
        [-0.05, 0.19, 0.83, 0.08, 0.30],
        [0.29, 0.30, 0.08, 1.52, 0.46],
        [0.09, 0.38, 0.30, 0.46, 0.82],
    ])
    # Two identical halves: the family has two components, the density is one Gaussian.
    params = _params(log_z, [0.5, 0.5], [mu, mu], [cov, cov])
    return Target(params, float(log_z), np.zeros(DIM, np.float32), np.full(DIM, 0.8, np.float32))


def gaussian_mixture(log_z: float = -1.7) -> Target:
    """exp(log_z) [0.3 N((-2.5, 0), 0.6^2 I) + 0.7 N((2.5, 0.5), diag(0.7^2, 0.5^2))] in the
    first two coordinates.

    The modes are ~8 component stds apart (overlap ~1e-7); q0 is a broad Gaussian over both, so
    a short diffusion can split its particles between them instead of having to find a mode.
    """
    means = [_pad(np.array([-2.5, 0.0]), 0.0), _pad(np.array([2.5, 0.5]), 0.0)]
    covs = [_pad_cov(np.diag([0.6**2, 0.6**2])), _pad_cov(np.diag([0.7**2, 0.5**2]))]
    params = _params(log_z, [0.3, 0.7], means, covs)
    return Target(params, float(log_z), _pad(np.array([0.0, 0.3]), 0.0),
                  _pad(np.array([2.0, 1.0]), 1.0))


def blr_data(dim: int = 3, seed: int = 0, noise: float = 0.5, offset: float = 0.3):
    """Design matrix a [NUM_POINTS, dim] and observations y of a linear model with known z."""
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(NUM_POINTS, dim))
    z_true = rng.normal(size=dim)
    y = a @ z_true + offset + noise * rng.normal(size=NUM_POINTS)
    return a, y


def blr_posterior(a, y, noise: float = 0.5, offset: float = 0.3):
    """Exact (log Z, posterior mean, posterior cov) in float64 numpy: with z ~ N(0, I) the
    observations are y ~ N(offset, noise^2 I + A A^T)."""
    a, y = np.asarray(a, np.float64), np.asarray(y, np.float64)
    n, d = a.shape
    cov_y = noise**2 * np.eye(n) + a @ a.T
    diff = y - offset
    log_z = -0.5 * (diff @ np.linalg.solve(cov_y, diff) + np.linalg.slogdet(cov_y)[1]
                    + n * _LOG_2PI)
    cov = np.linalg.inv(np.eye(d) + a.T @ a / noise**2)
    mean = cov @ a.T @ diff / noise**2
    return float(log_z), mean, cov


def bayesian_linear_regression(seed: int = 0, noise: float = 0.5, offset: float = 0.3) -> Target:
    """gamma(z) = N(z; 0, I) prod_n N(y_n; a_n . z + offset, noise^2), z in 3-D, 12 points.

    q0 is off by 1.5 posterior stds in the mean, 2x too wide and blind to the correlations.
    """
    a, y = blr_data(seed=seed, noise=noise, offset=offset)
    log_z, mean, cov = blr_posterior(a, y, noise, offset)
    a_pad = np.concatenate([a, np.zeros((NUM_POINTS, DIM - a.shape[1]))], axis=1)
    prior = [np.zeros(DIM), np.zeros(DIM)]
    params = _params(0.0, [0.5, 0.5], prior, [np.eye(DIM)] * 2, a_pad, y, noise, offset)
    std = np.sqrt(np.diag(cov))
    q0_mean = mean + 1.5 * std * np.array([1.0, -1.0, 1.0])
    return Target(params, log_z, _pad(q0_mean, 0.0), _pad(2.0 * std, 1.0))


TARGETS = {
    "gauss5d": correlated_gaussian,
    "mixture2d": gaussian_mixture,
    "blr": bayesian_linear_regression,
}


def stack(targets) -> dict:
    """Family parameters of several targets stacked on a leading axis, for jax.vmap."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *[t.params for t in targets])
