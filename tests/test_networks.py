"""Decoder and score-network contracts (encoders: test_encoders.py)."""

import jax
import jax.numpy as jnp
import numpy as np

from amvi_jax import networks


def test_decoder_learned_std_respects_floor():
    dec = networks.Decoder(dim_y=2, hidden=(8,), learn_std=True, std_y=0.25, std_y_min=0.1)
    x = jnp.ones((5, 1))
    params = dec.init(jax.random.PRNGKey(0), x, jnp.zeros(3))
    mean, std = dec.apply(params, x, jnp.zeros(3))
    assert mean.shape == (5, 2) and std.shape == (2,)
    np.testing.assert_allclose(std, 0.25, rtol=1e-5)
    params["params"]["raw_std"] = jnp.full((2,), -50.0)
    _, std = dec.apply(params, x, jnp.zeros(3))
    assert bool(jnp.all(std >= 0.1))


def test_score_network_starts_at_zero():
    net = networks.ScoreNetwork(dim_z=3, hidden=(8, 8))
    z = jnp.ones(3)
    params = net.init(jax.random.PRNGKey(0), z, jnp.zeros(0), 0.5, jnp.ones(4), z)
    out = net.apply(params, z * 2, jnp.zeros(0), 0.1, jnp.ones(4) * 3, z)
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, 0.0)
