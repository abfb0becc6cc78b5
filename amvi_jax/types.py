"""The data types and densities that models, samplers, evaluation and the reference share.

A sampler returns a `SamplerOutput`; GMM-NP, the AIS reference and the evaluation build or read
the same type. The Gaussian density and the whitening map are the two pieces of arithmetic that
all of them use. Nothing here depends on any other module of the library.
"""

from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp

LogDensity = Callable[[jax.Array], jax.Array]  # z [d_z] -> log gamma(z) []
_LOG_2PI = jnp.log(2.0 * jnp.pi)


class Schedules(NamedTuple):
    """What a sampler uses for one task, typed; None where a kernel has no such quantity.

    beta: [K + 1] annealing path pi_k ∝ q0^(1 - beta_k) gamma^beta_k (beta_0 = 0, beta_K = 1).
    step_size: [K] the kernel's per-step size (a step eps_k in whitened coordinates, or the
        fraction of noise a step adds).
    damping: [] momentum persistence eta in (0, 1) (underdamped kernels).
    mass: [d_z] diagonal mass (underdamped kernels).
    """

    beta: jax.Array | None = None
    step_size: jax.Array | None = None
    damping: jax.Array | None = None
    mass: jax.Array | None = None


class SamplerOutput(NamedTuple):
    """z [P, d_z] final particles, log_w [P] log importance weights, and the run's schedules
    (leaves carry no particle axis; under vmap over tasks they gain the task axis).

    z0 [P, d_z] are the particles' starting points, drawn from q0 (None where a sampler does not
    start from q0): the weight's only q0 term is -log q0(z0), which is what lets a mixture q0
    reuse any sampler (`samplers.mixture`).
    """

    z: jax.Array
    log_w: jax.Array
    schedules: Schedules
    z0: jax.Array | None = None


class Start(NamedTuple):
    """Given starting particles, for a q0 that is not the Gaussian N(q0_mean, S S^T) the sampler
    whitens with (e.g. a mixture, `samplers.mixture`).

    u [P, d_z]: the starts in the whitened coordinates u = S^-1 (z - q0_mean).
    log_q [P]: the log density they were drawn from, in those coordinates (log q0(z) + log|det S|),
        minus any stratification correction; the weight's q0 term is -log_q.
    """

    u: jax.Array
    log_q: jax.Array


def log_normal_diag(x: jax.Array, mean: jax.Array, var: jax.Array) -> jax.Array:
    """log N(x; mean, diag(var)) summed over the last axis. var broadcasts against x."""
    return -0.5 * jnp.sum((x - mean) ** 2 / var + jnp.log(var) + _LOG_2PI, axis=-1)


def whiten(log_target: LogDensity, q0_mean: jax.Array, q0_scale: jax.Array):
    """Returns (log_gamma_u, to_z): the target in whitened coordinates and the map u -> z.

    q0_mean [d_z]; q0_scale [d_z] (diagonal S) or [d_z, d_z] (lower-triangular S, positive
    diagonal). z = mean + S u and log_gamma_u(u) = log_target(z(u)) + log |det S|.
    """
    check_q0(q0_mean, q0_scale)
    if q0_scale.ndim == 1:
        log_det = jnp.sum(jnp.log(q0_scale))

        def to_z(u):
            return q0_mean + q0_scale * u
    else:
        log_det = jnp.sum(jnp.log(jnp.diagonal(q0_scale)))

        def to_z(u):
            return q0_mean + q0_scale @ u

    def log_gamma_u(u):
        return log_target(to_z(u)) + log_det

    return log_gamma_u, to_z


def check_q0(q0_mean, q0_scale) -> None:
    """q0_mean [d]; q0_scale [d] or a [d, d] lower-triangular factor."""
    chex.assert_rank(q0_mean, 1)
    if q0_scale.ndim == 1:
        chex.assert_equal_shape([q0_mean, q0_scale])
    else:
        chex.assert_shape(q0_scale, (q0_mean.shape[0], q0_mean.shape[0]))
