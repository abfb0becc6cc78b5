"""DIS: at initialisation the control is the score of the annealing path, so the generative
step is the reversed OU move towards it; options and their errors. (The interface,
known-normaliser and whitening tests run on every registered sampler, DIS included.)"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import samplers, types
from tests.samplers import common

NUM_PARTICLES = 8


def test_one_step_matches_the_euler_kernels_by_hand():
    """K = 1 on N(0, I) targets: u_1 = u_0 + eps (u_0 + 2 c) + sqrt(2 eps) xi with the control
    c = -u_0 (beta_0 = 0, zero network), and log w = log gamma_u(u_1) - log N(u_0) +
    log N(u_0; (1 - eps) u_1, 2 eps) - log N(u_1; mean_F, 2 eps), computed from the returned
    particles and the driver's documented keys."""
    sampler = common.make("dis", num_steps=1, step_size_init=0.3)
    params = sampler.init(jax.random.key(0), 2, 0)
    shift = jnp.array([0.5, -1.0])  # the target N(shift, I), seen through q0 = N(0, I)

    def log_target(z):
        return types.log_normal_diag(z, shift, 1.0)

    key = jax.random.key(3)
    out = sampler.run(params, key, log_target, jnp.zeros(2), jnp.ones(2), jnp.zeros(0),
                      NUM_PARTICLES)
    eps = 0.3
    u0 = jax.random.normal(jax.random.fold_in(key, 0), (NUM_PARTICLES, 2))
    xi = jax.random.normal(jax.random.fold_in(key, 1), (NUM_PARTICLES, 2))
    mean_f = u0 + eps * (u0 - 2.0 * u0)
    u1 = mean_f + np.sqrt(2 * eps) * xi
    np.testing.assert_allclose(out.z, u1, rtol=1e-5, atol=1e-5)
    expected = (types.log_normal_diag(u1, shift, 1.0) - types.log_normal_diag(u0, 0.0, 1.0)
                + types.log_normal_diag(u0, (1 - eps) * u1, 2 * eps)
                - types.log_normal_diag(u1, mean_f, 2 * eps))
    np.testing.assert_allclose(out.log_w, expected, rtol=1e-5, atol=1e-4)


def test_dis_options_and_their_errors():
    cfg = samplers.default_config("dis")
    assert "learn_schedule" in cfg and "hidden" in cfg and "damping_init" not in cfg
    with pytest.raises(ValueError, match="step_size_init"):
        samplers.get("dis", step_size_init=1.5)
    with pytest.raises(ValueError, match="damping_init"):
        samplers.get("dis", damping_init=0.5)  # overdamped: no momentum
