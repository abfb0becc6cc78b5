"""The AIS reference of a model: log Z and the predictive under the reference posterior match
closed forms on a decoder linear in z (Bayesian linear regression)."""

import jax
import jax.numpy as jnp
import numpy as np

from amvi_jax import gap, networks, reference, samplers
from amvi_jax.encoders.bayesian import BayesianAggregator
from amvi_jax.neural_process import NeuralProcess


def _linear_gaussian_task():
    model = NeuralProcess(encoder=BayesianAggregator(dim_z=2, hidden=(8,)),
                          decoder=networks.Decoder(dim_y=1, hidden=(), learn_std=False,
                                                   std_y=0.3),
                          sampler=samplers.get("gaussian"))
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    kx, ky = jax.random.split(jax.random.PRNGKey(1))
    x = jax.random.uniform(kx, (16, 1), minval=-2, maxval=2)
    y = jnp.sin(2 * x) + 0.3 * jax.random.normal(ky, (16, 1))
    return model, params, x, y


def _exact(model, params, x, y, n_ctx):
    """log Z of the first n_ctx points and the log predictive of all 16 given them."""
    c, _ = model.predict(params, x, jnp.zeros(2))
    a = np.stack([np.asarray(model.predict(params, x, jnp.eye(2)[i])[0] - c)[:, 0]
                  for i in range(2)], -1).astype(np.float64)  # [N, 2]
    r = np.asarray(y - c, np.float64)[:, 0]
    s2 = 0.3**2

    def log_normal(v, cov):
        return -0.5 * (v @ np.linalg.solve(cov, v) + np.linalg.slogdet(cov)[1]
                       + len(v) * np.log(2 * np.pi))

    ac, rc = a[:n_ctx], r[:n_ctx]
    log_z = log_normal(rc, ac @ ac.T + s2 * np.eye(n_ctx))
    post_cov = np.linalg.inv(np.eye(2) + ac.T @ ac / s2)
    post_mean = post_cov @ ac.T @ rc / s2
    pred = log_normal(r - a @ post_mean, a @ post_cov @ a.T + s2 * np.eye(len(r)))
    return log_z, pred


def test_reference_log_z_and_predictive_match_the_closed_forms():
    model, params, x, y = _linear_gaussian_task()
    config = reference.AISConfig(num_temperatures=256, num_particles=1024,
                                 num_pilot_particles=128, transition="mala")
    metrics = gap.reference_task_metrics(model, config)
    n_ctx, width = 5, 8  # the first 5 points in a context window of 8 (masked)
    mask = (jnp.arange(width) < n_ctx).astype(jnp.float32)
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    xs, ys = jnp.stack([x, x]), jnp.stack([y, y])
    log_z, lmlhd_ref = (np.asarray(v) for v in metrics(params, keys, xs, ys, mask))
    exact_log_z, exact_pred = _exact(model, params, x, y, n_ctx)
    np.testing.assert_allclose(log_z, exact_log_z, atol=0.05)
    # The predictive of all 16 points: dropping the context from the target, or forgetting
    # the weights, moves it by nats.
    np.testing.assert_allclose(lmlhd_ref, exact_pred, atol=0.1)


def test_refined_sampling_is_unbiased_for_log_z_and_tightens_with_temperatures():
    """The test-time dial: AIS from the amortized q0 (here the encoder's, untrained, so far from
    the posterior). log Z-hat is unbiased for the closed-form log Z; the ELBO stays below it and
    approaches it as the number of temperatures grows."""
    model, params, x, y = _linear_gaussian_task()
    mask = (jnp.arange(16) < 5).astype(jnp.float32)
    exact_log_z, _ = _exact(model, params, x, y, 5)
    elbos = {}
    for temperatures in (4, 64):
        refined = model.with_sampler(samplers.get(
            "ais", num_steps=temperatures, num_pilot_particles=64, transition="mala"))
        out = jax.jit(lambda k, m=refined: m.sample(params, k, x, y, mask, 2048))(
            jax.random.PRNGKey(3))
        log_w = np.asarray(out.log_w, np.float64)
        w = np.exp(log_w - log_w.max())
        log_z_hat = np.log(w.mean()) + log_w.max()
        se = w.std() / np.sqrt(len(w)) / w.mean()
        assert abs(log_z_hat - exact_log_z) < 4 * se + 0.02, (temperatures, log_z_hat)
        elbos[temperatures] = log_w.mean()
        assert elbos[temperatures] < exact_log_z
    assert elbos[4] + 2.0 < elbos[64] and exact_log_z - elbos[64] < 0.3
