"""Whitening is exact: moving target and q0 together by an affine map changes nothing.

The samplers run in u = (z - mean) / scale. With z' = A z + c (A diagonal, positive), target'
(z') = target(A^-1 (z' - c)) - sum log A and q0' = N(A mean + c, (A scale)^2) the whitened problem
is the same, so for the same key log w is unchanged and z' = A z + c. A Jacobian written in only
one of the two coordinate systems (or in neither) breaks this by sum log A.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import samplers
from tests.samplers import common
from tests.samplers import targets as tg

A = jnp.array([4.0, 0.5, 3.0, 0.25, 1.5])  # log det = log 2.25, far from 0
C = jnp.array([1.0, -2.0, 0.5, 3.0, -1.0])


@pytest.mark.parametrize("name", samplers.NAMES)
def test_affine_change_of_coordinates_leaves_weights_unchanged(name):
    sampler, run = common.gaussian_run(name)
    # A non-zero network and non-default schedule, damping and mass: all of them see u only.
    params = common.perturb(sampler.init(jax.random.key(0), 5, 3), jax.random.key(1))
    key, e = jax.random.key(2), jnp.array([0.5, -1.0, 2.0])
    z, log_w = run(params, key, e, jnp.ones(5), jnp.zeros(5))
    z_t, log_w_t = run(params, key, e, A, C)
    # |log w| stays below ~50 here, so float32 rounding is ~1e-5; a Jacobian error is ~0.8.
    np.testing.assert_allclose(np.asarray(log_w_t), np.asarray(log_w), rtol=0, atol=2e-4)
    np.testing.assert_allclose(np.asarray(z_t), np.asarray(A * z + C), rtol=1e-5, atol=1e-4)
    # The comparison is only meaningful if the weights are far from trivial.
    assert np.std(np.asarray(log_w)) > 0.1


L = jnp.array([[2.0, 0.0, 0.0, 0.0, 0.0],
               [0.7, 0.5, 0.0, 0.0, 0.0],
               [-0.4, 0.3, 3.0, 0.0, 0.0],
               [0.2, -0.6, 0.1, 0.25, 0.0],
               [0.5, 0.2, -0.3, 0.4, 1.5]])  # lower triangular, log det = log 1.125


@pytest.mark.parametrize("name", samplers.NAMES)
def test_correlated_q0_whitens_with_its_triangular_factor(name):
    """q0 with a lower-triangular scale S: moving target and q0 together by z' = L z + c
    (q0' = N(L m + c, (L S)(L S)^T), L S again lower triangular) leaves the weights unchanged
    and maps the particles by L, as for the diagonal case."""
    sampler, _ = common.gaussian_run(name)
    target = tg.correlated_gaussian()
    mean = jnp.asarray(target.q0_mean)
    scale = jnp.diag(jnp.asarray(target.q0_scale))  # a [d, d] factor
    params = common.perturb(sampler.init(jax.random.key(0), 5, 3), jax.random.key(1))
    key, e = jax.random.key(2), jnp.array([0.5, -1.0, 2.0])

    @jax.jit
    def run(lin, shift):
        log_det = jnp.sum(jnp.log(jnp.diagonal(lin)))

        def log_target(z):
            return target.log_prob(jax.scipy.linalg.solve_triangular(lin, z - shift,
                                                                     lower=True)) - log_det
        out = sampler.run(params, key, log_target, lin @ mean + shift, lin @ scale, e, 256)
        return out.z, out.log_w

    eye = jnp.eye(5)
    z, log_w = run(eye, jnp.zeros(5))
    z_t, log_w_t = run(L, C)
    np.testing.assert_allclose(np.asarray(log_w_t), np.asarray(log_w), rtol=0, atol=5e-4)
    np.testing.assert_allclose(np.asarray(z_t), np.asarray(z @ L.T + C), rtol=1e-4, atol=5e-4)
    assert np.std(np.asarray(log_w)) > 0.1
