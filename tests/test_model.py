"""The model's target density on a decoder linear in z: Bayesian linear regression, exact log Z."""

import jax
import jax.numpy as jnp
import numpy as np

from amvi_jax import networks, samplers
from amvi_jax.encoders.bayesian import BayesianAggregator
from amvi_jax.neural_process import NeuralProcess


def _linear_model(dim_z):
    """hidden=() makes the decoder one Dense layer on [x, z]: linear in z, log Z in closed form."""
    return NeuralProcess(
        encoder=BayesianAggregator(dim_z=dim_z, hidden=(8,)),
        decoder=networks.Decoder(dim_y=1, hidden=(), learn_std=False, std_y=0.4),
        sampler=samplers.get("gaussian"))


def _task(key, n=12):
    kx, ky = jax.random.split(key)
    x = jax.random.uniform(kx, (n, 1), minval=-2, maxval=2)
    y = jnp.sin(2 * x) + 0.3 * jax.random.normal(ky, (n, 1))
    return x, y


def _blr_log_z_and_posterior(model, params, x, y, mask):
    """y_C = c + A z + noise, z ~ N(0, I): log N(y_C; c, A A^T + s^2 I) and p(z | y_C)."""
    dim_z = model.dim_z
    c, std = model.predict(params, x, jnp.zeros(dim_z))
    cols = [model.predict(params, x, jnp.eye(dim_z)[i])[0] - c for i in range(dim_z)]
    a = jnp.concatenate(cols, axis=-1)  # [N, d_z]
    sel = np.asarray(mask) > 0
    a_c, r = np.asarray(a)[sel], np.asarray(y - c)[sel, 0]
    s2 = float(std[0]) ** 2
    cov = a_c @ a_c.T + s2 * np.eye(len(r))
    _, logdet = np.linalg.slogdet(cov)
    log_z = -0.5 * (r @ np.linalg.solve(cov, r) + logdet + len(r) * np.log(2 * np.pi))
    prec = np.eye(dim_z) + a_c.T @ a_c / s2
    post_cov = np.linalg.inv(prec)
    return log_z, post_cov @ a_c.T @ r / s2, post_cov


def test_gaussian_elbo_below_log_z_and_importance_estimate_matches():
    model = _linear_model(dim_z=2)
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    x, y = _task(jax.random.PRNGKey(1))
    mask = (jnp.arange(12) < 7).astype(jnp.float32)
    log_z, _, _ = _blr_log_z_and_posterior(model, params, x, y, mask)
    num = 200_000
    out = jax.jit(lambda k: model.sample(params, k, x, y, mask, num))(jax.random.PRNGKey(2))
    log_w = np.asarray(out.log_w, np.float64)
    elbo, stderr = log_w.mean(), log_w.std() / np.sqrt(num)
    assert elbo + 5 * stderr < log_z, (elbo, log_z)
    w = np.exp(log_w - log_w.max())
    log_z_hat = np.log(w.mean()) + log_w.max()
    rel_err = w.std() / (w.mean() * np.sqrt(num))
    assert abs(log_z_hat - log_z) < 5 * rel_err + 1e-3, (log_z_hat, log_z, rel_err)


def test_exact_posterior_proposal_gives_constant_weights():
    """With q0 = p(z | D_C) every log-weight equals log Z: the log-weight formula is exact."""
    model = _linear_model(dim_z=1)
    params = model.init(jax.random.PRNGKey(3), 1, 1)
    x, y = _task(jax.random.PRNGKey(4))
    mask = (jnp.arange(12) < 5).astype(jnp.float32)
    log_z, mean, cov = _blr_log_z_and_posterior(model, params, x, y, mask)
    out = model.sampler.run({}, jax.random.PRNGKey(5), model.log_target(params, x, y, mask),
                            jnp.asarray(mean, jnp.float32),
                            jnp.asarray(np.sqrt(np.diag(cov)), jnp.float32), jnp.zeros(0), 512)
    np.testing.assert_allclose(out.log_w, log_z, rtol=0, atol=2e-4)


def test_log_target_is_prior_plus_masked_likelihood():
    model = _linear_model(dim_z=2)
    params = model.init(jax.random.PRNGKey(6), 1, 1)
    x, y = _task(jax.random.PRNGKey(7))
    z = jnp.array([0.3, -0.8])
    mask = jnp.zeros(12).at[jnp.array([1, 4])].set(1.0)
    mean, std = model.predict(params, x, z)
    idx = jnp.array([1, 4])
    expected = (jax.scipy.stats.norm.logpdf(z).sum()
                + jax.scipy.stats.norm.logpdf(y[idx], mean[idx], std).sum())
    np.testing.assert_allclose(model.log_target(params, x, y, mask)(z), expected, rtol=1e-5)
    # The empty context leaves the prior: log Z = 0.
    np.testing.assert_allclose(model.log_target(params, x, y, jnp.zeros(12))(z),
                               jax.scipy.stats.norm.logpdf(z).sum(), rtol=1e-6)
