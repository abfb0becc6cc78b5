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
