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


def test_heteroscedastic_decoder_gives_each_point_its_own_std_above_the_floor():
    dec = networks.Decoder(dim_y=2, hidden=(8,), std_y=0.25, std_y_min=0.1,
                           heteroscedastic=True)
    x = jnp.linspace(-1, 1, 10)[:, None]
    params = dec.init(jax.random.PRNGKey(0), x, jnp.zeros(3))
    mean, std = dec.apply(params, x, jnp.ones(3))
    assert mean.shape == (10, 2) and std.shape == (10, 2)
    np.testing.assert_allclose(std, 0.25, rtol=1e-5)  # every point starts at std_y
    head = params["params"]["std_head"]
    head["kernel"] = jax.random.normal(jax.random.PRNGKey(1), head["kernel"].shape)
    _, std = dec.apply(params, x, jnp.ones(3))
    assert float(jnp.std(std[:, 0])) > 1e-3  # then varies with the point
    head["bias"] = jnp.full_like(head["bias"], -80.0)
    head["kernel"] = jnp.zeros_like(head["kernel"])
    _, std = dec.apply(params, x, jnp.ones(3))
    assert bool(jnp.all(std >= 0.1)) and float(jnp.max(std)) < 0.11


def test_score_network_starts_at_zero():
    net = networks.ScoreNetwork(dim_z=3, hidden=(8, 8))
    z = jnp.ones(3)
    params = net.init(jax.random.PRNGKey(0), z, jnp.zeros(0), 0.5, jnp.ones(4), z)
    out = net.apply(params, z * 2, jnp.zeros(0), 0.1, jnp.ones(4) * 3, z)
    assert out.shape == (3,)
    np.testing.assert_array_equal(out, 0.0)


def test_fourier_features_are_exact_and_the_identity_at_zero():
    x = jnp.array([[0.25, -0.5]])
    np.testing.assert_array_equal(networks.fourier_features(x, 0), x)
    f = networks.fourier_features(x, 2)  # [x, sin(pi x), sin(2 pi x), cos(pi x), cos(2 pi x)]
    assert f.shape == (1, 2 * (1 + 2 * 2))
    expected = [0.25, -0.5, np.sin(np.pi / 4), np.sin(np.pi / 2), np.sin(-np.pi / 2),
                np.sin(-np.pi), np.cos(np.pi / 4), np.cos(np.pi / 2), np.cos(-np.pi / 2),
                np.cos(-np.pi)]
    np.testing.assert_allclose(f[0], expected, atol=1e-6)
    # The decoder and the encoders read them: their first layers widen to d_x (1 + 2 L).
    dec = networks.Decoder(dim_y=1, hidden=(8,), x_frequencies=3)
    params = dec.init(jax.random.PRNGKey(0), jnp.ones((4, 2)), jnp.zeros(5))
    assert params["params"]["MLP_0"]["Dense_0"]["kernel"].shape[0] == 2 * 7 + 5


def test_grid_decoder_reads_each_pixel_of_the_image_its_mlp_draws_from_z():
    from amvi_jax.data import images

    dec = networks.GridDecoder(dim_y=1, grid_shape=(3, 4), hidden=(8,), heteroscedastic=True,
                               std_y=0.25, std_y_min=0.1)
    x = images.pixel_coordinates(3, 4)  # row-major: pixel k = 4 * row + column
    z = jnp.arange(5.0)
    params = dec.init(jax.random.PRNGKey(0), x, z)
    mean, std = dec.apply(params, x, z)
    image = networks.MLP((8, 2 * 12)).apply({"params": params["params"]["MLP_0"]}, z)
    np.testing.assert_allclose(mean[:, 0], image.reshape(12, 2)[:, 0], rtol=1e-6)
    assert std.shape == (12, 1) and bool(jnp.all(std > 0.1))
    # Any order and subset of pixels reads the same values: a task's random pixel order.
    order = jnp.array([11, 0, 5, 5])
    np.testing.assert_allclose(dec.apply(params, x[order], z)[0], mean[order], rtol=1e-6)
