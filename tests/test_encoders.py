"""Context encoders: every registered one is permutation invariant, ignores non-context points
and declares its embedding size; Bayesian aggregation is Gaussian conditioning; attention is
defined on an empty context."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from amvi_jax import configuration, encoders, experiment
from amvi_jax.encoders.bayesian import MIN_VARIANCE, BayesianAggregator
from amvi_jax.networks import MLP
from configs import default


def _data(key, n=10, dx=1, dy=1):
    kx, ky = jax.random.split(key)
    return jax.random.normal(kx, (n, dx)), jax.random.normal(ky, (n, dy))


def _model_config(**fields) -> ml_collections.ConfigDict:
    """configs/default.py's model section with `fields` changed (defaults live there only)."""
    model = default.get_config().model
    model.update(fields)
    return model


def _encoder(name, dim_z=3, hidden=(16, 16)):
    return encoders.REGISTRY[name](_model_config(
        dim_z=dim_z, encoder_hidden=hidden, activation="gelu", aggregation=name,
        attention_heads=4, attention_layers=2))


@pytest.mark.parametrize("name", encoders.NAMES)
def test_encoder_shapes_and_invariances(name):
    enc = _encoder(name)
    x, y = _data(jax.random.PRNGKey(0))
    mask = jnp.array([1, 1, 0, 1, 0, 1, 1, 0, 0, 1], jnp.float32)
    params = enc.init(jax.random.PRNGKey(1), x, y, mask)
    apply = jax.jit(enc.apply)
    out = apply(params, x, y, mask)
    assert out.mean.shape == out.scale.shape == (3,)
    assert out.embedding.shape == (enc.dim_embedding,)
    assert out.mean.dtype == jnp.float32 and bool(jnp.all(out.scale > 0))

    perm = jax.random.permutation(jax.random.PRNGKey(2), 10)
    permuted = apply(params, x[perm], y[perm], mask[perm])
    for a, b in ((permuted.mean, out.mean), (permuted.scale, out.scale),
                 (permuted.embedding, out.embedding)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)

    # Masked-out points may hold anything, even huge values: the output must not move.
    junk_x = jnp.where(mask[:, None] > 0, x, 1e3)
    junk_y = jnp.where(mask[:, None] > 0, y, -7e2)
    junk = apply(params, junk_x, junk_y, mask)
    np.testing.assert_allclose(junk.mean, out.mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(junk.scale, out.scale, rtol=1e-5, atol=1e-5)

    # The context matters: another context set gives another q0.
    other = apply(params, x, y, 1.0 - mask)
    assert not np.allclose(other.mean, out.mean, atol=1e-4)

    # An empty context gives a finite q0 that no point can change.
    empty = apply(params, x, y, jnp.zeros(10))
    empty_junk = apply(params, junk_x, junk_y, jnp.zeros(10))
    assert np.all(np.isfinite(np.asarray(empty.mean))) and bool(jnp.all(empty.scale > 0))
    np.testing.assert_allclose(empty_junk.mean, empty.mean, rtol=1e-5, atol=1e-5)


def test_attention_embedding_carries_the_pooled_context():
    enc = _encoder("attention", dim_z=2, hidden=(8, 16))
    assert enc.dim_embedding == 2 * 2 + 16
    x, y = _data(jax.random.PRNGKey(3), n=6)
    params = enc.init(jax.random.PRNGKey(4), x, y, jnp.ones(6))
    out = enc.apply(params, x, y, jnp.ones(6))
    np.testing.assert_array_equal(out.embedding[:2], out.mean)
    np.testing.assert_allclose(out.embedding[2:4], jnp.log(out.scale), rtol=1e-5, atol=1e-6)


def test_bayesian_empty_context_returns_learned_prior():
    enc = BayesianAggregator(dim_z=2, hidden=(8,))
    x, y = _data(jax.random.PRNGKey(0), n=5)
    params = enc.init(jax.random.PRNGKey(1), x, y, jnp.ones(5))
    p = jax.tree.map(lambda a: a, params)
    p["params"]["mu0"] = jnp.array([0.3, -1.2])
    p["params"]["raw_var0"] = jnp.array([0.5, -2.0])
    out = enc.apply(p, x, y, jnp.zeros(5))
    np.testing.assert_allclose(out.mean, [0.3, -1.2], rtol=1e-6)
    var0 = jax.nn.softplus(jnp.array([0.5, -2.0])) + MIN_VARIANCE
    np.testing.assert_allclose(out.scale, jnp.sqrt(var0), rtol=1e-5)


def test_bayesian_aggregation_is_gaussian_conditioning():
    """q0 equals the posterior of N(mu0, s0^2) given observations r_n with noise s_n^2."""
    enc = BayesianAggregator(dim_z=2, hidden=(8,))
    x, y = _data(jax.random.PRNGKey(3), n=6)
    mask = jnp.array([1, 0, 1, 1, 0, 1], jnp.float32)
    params = enc.init(jax.random.PRNGKey(4), x, y, mask)
    out = enc.apply(params, x, y, mask)
    point_net = MLP((8, 4))
    raw = point_net.apply({"params": params["params"]["MLP_0"]}, jnp.concatenate([x, y], -1))
    r, var_n = raw[:, :2], jax.nn.softplus(raw[:, 2:]) + MIN_VARIANCE
    mu0 = params["params"]["mu0"]
    var0 = jax.nn.softplus(params["params"]["raw_var0"]) + MIN_VARIANCE
    sel = mask > 0
    prec = 1 / var0 + jnp.sum(1 / var_n[sel], 0)
    mean = (mu0 / var0 + jnp.sum(r[sel] / var_n[sel], 0)) / prec
    np.testing.assert_allclose(out.mean, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.scale, 1 / jnp.sqrt(prec), rtol=1e-5)


def test_more_context_shrinks_bayesian_scale():
    enc = BayesianAggregator(dim_z=2, hidden=(8,))
    x, y = _data(jax.random.PRNGKey(5), n=8)
    params = enc.init(jax.random.PRNGKey(6), x, y, jnp.ones(8))
    scales = [enc.apply(params, x, y, (jnp.arange(8) < n).astype(jnp.float32)).scale
              for n in range(9)]
    assert all(bool(jnp.all(b < a)) for a, b in zip(scales, scales[1:], strict=False))


def test_unknown_encoder_lists_valid_names():
    with pytest.raises(ValueError, match="unknown encoder 'max'; valid names: bayesian, mean"):
        encoders.REGISTRY["max"]


def test_attention_heads_must_divide_the_width():
    config = default.get_config()
    config.model.update(dict(aggregation="attention", encoder_hidden=(30,), attention_heads=4))
    with pytest.raises(ValueError, match="config.model.attention_heads=4: must divide"):
        configuration.validate(config)


@pytest.mark.slow
def test_attention_neural_process_trains_and_evaluates(tiny_config, tmp_path):
    """--config.model.aggregation=attention on the default config: a tiny run end to end; and
    a diffusion on it gets the encoder's embedding (larger than [mean, log scale])."""
    from amvi_jax import neural_process

    tiny_config.model.aggregation = "attention"
    tiny_config.train.update(dict(num_steps=10, validate_every=5, checkpoint_every=5))
    tiny_config.eval.plot_tasks = 0
    summary = experiment.train_and_evaluate(tiny_config, str(tmp_path / "run"))
    assert summary["encoder"] == "attention"
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    default.with_diffusion(tiny_config, "ldvi", num_steps=2)
    model = neural_process.from_config(tiny_config, 1)
    d = tiny_config.model.dim_z
    assert model.dim_embedding == 2 * d + 16  # tiny encoder_hidden = (16,)
    # The score network's first layer reads [u, rho, time features, e, score].
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    first = params["sampler"]["net"]["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert first.shape[0] == d + d + 16 + model.dim_embedding + d


@pytest.mark.parametrize("name", encoders.NAMES)
def test_tied_prior_makes_the_empty_context_exact(name):
    """With tie_prior, q0 of an empty context is N(0, I), the model prior, which is the exact
    posterior there: every log weight of the Gaussian sampler is 0 = log Z."""
    from amvi_jax import networks, samplers
    from amvi_jax.neural_process import NeuralProcess

    cfg = _model_config(dim_z=3, encoder_hidden=(16,), activation="gelu", aggregation=name,
                        attention_heads=4, attention_layers=1, tie_prior=True)
    model = NeuralProcess(encoders.from_config(cfg), networks.Decoder(dim_y=1, hidden=(8,)),
                          samplers.get("gaussian"))
    x, y = _data(jax.random.PRNGKey(7), n=6)
    params = model.init(jax.random.PRNGKey(8), 1, 1)
    empty = jnp.zeros(6)
    q0 = model.encode(params, x, y, empty)
    np.testing.assert_array_equal(q0.mean, np.zeros(3))
    np.testing.assert_array_equal(q0.scale, np.ones(3))
    out = model.sample(params, jax.random.PRNGKey(9), x, y, empty, 256)
    np.testing.assert_allclose(out.log_w, 0.0, atol=1e-5)
    # A non-empty context still moves q0, and the Bayesian prior has no learned parameters.
    assert not np.allclose(model.encode(params, x, y, jnp.ones(6)).mean, 0.0)
    if name == "bayesian":
        assert "mu0" not in params["encoder"]["params"]


@pytest.mark.parametrize("name", encoders.NAMES)
def test_full_covariance_q0_starts_diagonal_and_learns_correlations(name):
    """q0_covariance = "full": scale is a lower-triangular factor whose diagonal is the
    diagonal encoder's scale; it starts with no correlation, and the correlation head moves it
    while the log-determinant stays sum(log scale)."""
    def build(covariance):
        return encoders.REGISTRY[name](_model_config(
            dim_z=3, encoder_hidden=(16,), activation="gelu", aggregation=name,
            attention_heads=4, attention_layers=1, q0_covariance=covariance))

    x, y = _data(jax.random.PRNGKey(10), n=6)
    mask = jnp.array([1, 1, 0, 1, 0, 1], jnp.float32)
    full, diag = build("full"), build("diag")
    params = full.init(jax.random.PRNGKey(11), x, y, mask)
    out = full.apply(params, x, y, mask)
    assert out.scale.shape == (3, 3)
    plain = {k: v for k, v in params["params"].items() if k != "correlation"}
    ref = diag.apply({"params": plain}, x, y, mask)
    np.testing.assert_allclose(out.scale, np.diag(np.asarray(ref.scale)), rtol=1e-6, atol=0)
    moved = jax.tree.map(lambda a: a, params)
    moved["params"]["correlation"]["bias"] = jnp.array([0.5, -0.3, 0.2])
    scale = np.asarray(full.apply(moved, x, y, mask).scale)
    assert np.all(np.triu(scale, 1) == 0) and np.any(np.tril(scale, -1) != 0)
    np.testing.assert_allclose(np.diagonal(scale), ref.scale, rtol=1e-6)
