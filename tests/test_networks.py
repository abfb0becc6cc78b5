"""Encoder / decoder contracts: aggregation maths, invariances, shapes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import networks


def _data(key, n=10, dx=1, dy=1):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, dx)), jax.random.normal(ky, (n, dy))


@pytest.mark.parametrize("aggregation", networks.AGGREGATIONS)
def test_encoder_shapes_and_invariances(aggregation):
    enc = networks.Encoder(dim_z=3, hidden=(16, 16), aggregation=aggregation)
    x, y = _data(jax.random.PRNGKey(0))
    mask = jnp.array([1, 1, 0, 1, 0, 1, 1, 0, 0, 1], jnp.float32)
    params = enc.init(jax.random.PRNGKey(1), x, y, mask)
    out = enc.apply(params, x, y, mask)
    assert out.mean.shape == out.scale.shape == (3,)
    assert out.embedding.shape == (6,)
    assert out.mean.dtype == jnp.float32 and bool(jnp.all(out.scale > 0))

    perm = jax.random.permutation(jax.random.PRNGKey(2), 10)
    permuted = enc.apply(params, x[perm], y[perm], mask[perm])
    np.testing.assert_allclose(permuted.mean, out.mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(permuted.scale, out.scale, rtol=1e-5, atol=1e-6)

    # Masked-out points may hold anything, even huge values: the output must not move.
    junk_x = jnp.where(mask[:, None] > 0, x, 1e3)
    junk_y = jnp.where(mask[:, None] > 0, y, -7e2)
    junk = enc.apply(params, junk_x, junk_y, mask)
    np.testing.assert_allclose(junk.mean, out.mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(junk.scale, out.scale, rtol=1e-6, atol=1e-6)


def test_bayesian_empty_context_returns_learned_prior():
    enc = networks.Encoder(dim_z=2, hidden=(8,), aggregation="bayesian")
    x, y = _data(jax.random.PRNGKey(0), n=5)
    params = enc.init(jax.random.PRNGKey(1), x, y, jnp.ones(5))
    p = jax.tree.map(lambda a: a, params)
    p["params"]["mu0"] = jnp.array([0.3, -1.2])
    p["params"]["raw_var0"] = jnp.array([0.5, -2.0])
    out = enc.apply(p, x, y, jnp.zeros(5))
    np.testing.assert_allclose(out.mean, [0.3, -1.2], rtol=1e-6)
    var0 = jax.nn.softplus(jnp.array([0.5, -2.0])) + 1e-4
    np.testing.assert_allclose(out.scale, jnp.sqrt(var0), rtol=1e-5)


def test_bayesian_aggregation_is_gaussian_conditioning():
    """q0 equals the posterior of N(mu0, s0^2) given observations r_n with noise s_n^2."""
    enc = networks.Encoder(dim_z=2, hidden=(8,), aggregation="bayesian")
    x, y = _data(jax.random.PRNGKey(3), n=6)
    mask = jnp.array([1, 0, 1, 1, 0, 1], jnp.float32)
    params = enc.init(jax.random.PRNGKey(4), x, y, mask)
    out = enc.apply(params, x, y, mask)
    point_net = networks.MLP((8, 4))
    raw = point_net.apply({"params": params["params"]["MLP_0"]}, jnp.concatenate([x, y], -1))
    r, var_n = raw[:, :2], jax.nn.softplus(raw[:, 2:]) + 1e-4
    mu0 = params["params"]["mu0"]
    var0 = jax.nn.softplus(params["params"]["raw_var0"]) + 1e-4
    sel = mask > 0
    prec = 1 / var0 + jnp.sum(1 / var_n[sel], 0)
    mean = (mu0 / var0 + jnp.sum(r[sel] / var_n[sel], 0)) / prec
    np.testing.assert_allclose(out.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.scale, 1 / jnp.sqrt(prec), rtol=1e-5)


def test_more_context_shrinks_bayesian_scale():
    enc = networks.Encoder(dim_z=2, hidden=(8,), aggregation="bayesian")
    x, y = _data(jax.random.PRNGKey(5), n=8)
    params = enc.init(jax.random.PRNGKey(6), x, y, jnp.ones(8))
    scales = [enc.apply(params, x, y, (jnp.arange(8) < n).astype(jnp.float32)).scale
              for n in range(9)]
    assert all(bool(jnp.all(b < a)) for a, b in zip(scales, scales[1:], strict=False))


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
