"""GMM-NP: the trust-region mixture update on targets with known answers, and one tiny run."""

import json
import os

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from amvi_jax import experiment
from amvi_jax import gmm as gmm_lib
from amvi_jax.gmm import linalg
from amvi_jax.methods import gmm_np
from configs import gmm as gmm_config


def _np_gaussian_kl(m_p, c_p, m_q, c_q):
    """KL(N(m_p, c_p) || N(m_q, c_q)) in float64 numpy, from full covariances."""
    m_p, c_p, m_q, c_q = (np.asarray(a, np.float64) for a in (m_p, c_p, m_q, c_q))
    prec_q = np.linalg.inv(c_q)
    diff = m_q - m_p
    return 0.5 * (np.trace(prec_q @ c_p) + diff @ prec_q @ diff - len(m_p)
                  + np.linalg.slogdet(c_q)[1] - np.linalg.slogdet(c_p)[1])


def _cov(chol):
    chol = np.asarray(chol, np.float64)
    return chol @ np.swapaxes(chol, -1, -2)


def _trace_updates(gmm, key, log_target, num_steps, **kw):
    """Runs num_steps updates -> (final GMM, states [num_steps + 1, ...], infos [num_steps])."""
    def body(g, k):
        new, info = gmm_lib.update(g, k, log_target, **kw)
        return new, (new, info)

    final, (states, infos) = jax.jit(lambda g, k: jax.lax.scan(
        body, g, jax.random.split(k, num_steps)))(gmm, key)
    states = jax.tree.map(lambda a0, a: np.concatenate([np.asarray(a0)[None], np.asarray(a)]),
                          gmm, states)
    return final, states, infos


def test_single_component_converges_to_gaussian_posterior_within_kl_bound():
    dim, eps = 3, 0.05
    a = jax.random.normal(jax.random.PRNGKey(0), (dim, dim))
    target_cov = a @ a.T * 0.05 + 0.02 * jnp.eye(dim)  # std ~0.15..0.5, correlated
    target_mean = jnp.array([1.5, -2.0, 0.5])
    target = gmm_lib.GMM(jnp.zeros(1), target_mean[None], jnp.linalg.cholesky(target_cov)[None])
    log_target = lambda z: gmm_lib.log_prob(target, z) + 7.0  # unnormalised on purpose

    start = gmm_lib.from_standard_normal(dim)
    final, states, infos = _trace_updates(start, jax.random.PRNGKey(1), log_target, 150,
                                          num_samples=32, kl_bound=eps)
    # Every step respects its bound, checked independently in float64 on successive states,
    # and the bound is active early on (an unbounded step would jump there at once).
    kls = [_np_gaussian_kl(states.mean[i + 1, 0], _cov(states.chol[i + 1, 0]),
                           states.mean[i, 0], _cov(states.chol[i, 0])) for i in range(150)]
    assert max(kls) <= eps * (1 + 1e-3) + 1e-6
    assert min(kls[:10]) > 0.9 * eps
    np.testing.assert_allclose(kls, np.asarray(infos.kl[:, 0]), atol=5e-5)
    assert bool(np.all(infos.accepted))
    # ... and ends at the exact posterior.
    kl_to_target = _np_gaussian_kl(final.mean[0], _cov(final.chol[0]), target_mean, target_cov)
    assert kl_to_target < 1e-3
    # The ELBO estimate converges to log Z = 7.
    np.testing.assert_allclose(float(infos.elbo[-1]), 7.0, atol=1e-3)


def test_two_component_mixture_finds_both_modes_of_a_bimodal_target():
    modes, std, mass = jnp.array([[-3.0, 0.0], [3.0, 1.0]]), 0.5, np.array([0.3, 0.7])
    log_target = lambda z: logsumexp(jnp.log(mass) - 0.5 * jnp.sum((z - modes) ** 2, -1) / std**2)
    log_z = np.log(2 * np.pi * std**2)  # unnormalised Gaussians with total mass 1
    for seed in range(3):
        start = gmm_lib.isotropic(jax.random.normal(jax.random.PRNGKey(seed), (2, 2)))
        final, _, infos = _trace_updates(start, jax.random.PRNGKey(10 + seed), log_target, 300,
                                         num_samples=32, kl_bound=0.05)
        means = np.asarray(final.mean)
        # Which component took which mode depends on the start; weights follow the modes.
        order = [int(np.argmin(np.linalg.norm(means - mode, axis=1))) for mode in modes]
        assert sorted(order) == [0, 1], (seed, means)
        np.testing.assert_allclose(means[order], modes, atol=0.05)
        np.testing.assert_allclose(np.exp(np.asarray(final.log_w))[order], mass, atol=0.02)
        np.testing.assert_allclose(_cov(final.chol), np.broadcast_to(std**2 * np.eye(2),
                                                                     (2, 2, 2)), atol=0.01)
        np.testing.assert_allclose(float(infos.elbo[-1]), log_z, atol=0.01)
        assert float(np.max(infos.kl)) <= 0.05 * (1 + 1e-4)


def test_stein_hessian_matches_quadratic_reward_within_monte_carlo_error():
    dim, num_samples, reps = 3, 64, 400
    k1, k2, k3 = jax.random.split(jax.random.PRNGKey(0), 3)
    a = jax.random.normal(k1, (dim, dim))
    curvature = a @ a.T + jnp.eye(dim)
    b = jnp.array([0.5, -1.0, 2.0])
    reward = lambda z: -0.5 * z @ curvature @ z + b @ z  # Hessian -curvature everywhere
    mean = jnp.array([0.3, -0.7, 1.1])
    chol = jnp.linalg.cholesky(jnp.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 2.0]]))

    def estimate(key):
        z = mean + jax.random.normal(key, (num_samples, dim)) @ chol.T
        return gmm_lib.stein_quadratic_model(mean, chol, z, jax.vmap(jax.grad(reward))(z))

    hess, grad = jax.jit(jax.vmap(estimate))(jax.random.split(k2, reps))
    hess, grad = np.asarray(hess, np.float64), np.asarray(grad, np.float64)
    assert np.allclose(hess, np.swapaxes(hess, -1, -2))
    se = hess.std(0) / np.sqrt(reps)
    assert np.all(np.abs(hess.mean(0) + np.asarray(curvature)) <= 4 * se + 1e-4)
    true_grad = np.asarray(-curvature @ mean + b)
    assert np.all(np.abs(grad.mean(0) - true_grad) <= 4 * grad.std(0) / np.sqrt(reps) + 1e-4)
    # One estimate is already close (the error shrinks like 1/sqrt(S)).
    one, _ = estimate(k3)
    assert np.max(np.abs(np.asarray(one) + np.asarray(curvature))) < 0.6 * np.max(curvature)


def test_precision_stays_positive_definite_and_bound_holds_on_a_convex_reward():
    # log gamma grows like +|z|^2 / 2: the reward's Hessian is positive, so a large step would
    # make the precision indefinite; the bisection must keep it positive definite.
    log_target = lambda z: 0.5 * z @ z
    start = gmm_lib.isotropic(jnp.array([[0.5, -0.5], [-1.0, 1.0]]))
    _, states, infos = _trace_updates(start, jax.random.PRNGKey(0), log_target, 5,
                                      num_samples=16, kl_bound=0.1)
    assert np.all(np.isfinite(states.chol))
    assert np.all(np.diagonal(states.chol, axis1=-2, axis2=-1) > 0)
    assert float(np.max(infos.kl)) <= 0.1 * (1 + 1e-4)
    # With eta capped at 1 + tiny, no step meets a tiny bound: components are kept unchanged.
    new, info = gmm_lib.update(start, jax.random.PRNGKey(1), lambda z: -0.5 * z @ z * 100.0,
                               num_samples=16, kl_bound=1e-6, eta_max=1.001)
    assert not np.any(np.asarray(info.accepted))
    np.testing.assert_array_equal(np.asarray(new.mean), np.asarray(start.mean))


def test_linalg_matches_numpy_and_flags_indefinite_matrices():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 4))
    p = (a @ a.T + 0.5 * np.eye(4)).astype(np.float32)
    np.testing.assert_allclose(linalg.cholesky(p), np.linalg.cholesky(p), atol=1e-5)
    np.testing.assert_allclose(linalg.cholesky_of_inverse(p),
                               np.linalg.cholesky(np.linalg.inv(p)), atol=1e-4)
    np.testing.assert_allclose(linalg.cho_solve(np.linalg.cholesky(p), np.ones(4)),
                               np.linalg.solve(p, np.ones(4)), rtol=1e-4)
    assert np.isnan(np.asarray(linalg.cholesky(jnp.array([[1.0, 2.0], [2.0, 1.0]])))).any()


def test_shapes_under_vmap_over_tasks_and_model_sampling():
    config = gmm_config.get_config()
    config.model.dim_z = 2
    config.gmm.update(dict(num_components=3, num_samples_per_component=4, num_test_steps=3))
    model = gmm_np.from_config(config, dim_y=1)
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    num_tasks, num_points, k, d = 5, 6, 3, 2
    x = jax.random.normal(jax.random.PRNGKey(1), (num_tasks, num_points, 1))
    y = jnp.sin(x)
    mask = jnp.ones((num_tasks, num_points)).at[:, 4:].set(0.0)
    post = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_tasks, *a.shape)),
                        params["posterior_init"])
    keys = jax.random.split(jax.random.PRNGKey(2), num_tasks)
    new, info = jax.jit(jax.vmap(lambda kk, q, xi, yi, mi: model.update_posterior(
        params, kk, q, xi, yi, mi)))(keys, post, x, y, mask)
    assert new.log_w.shape == (num_tasks, k)
    assert new.mean.shape == (num_tasks, k, d)
    assert new.chol.shape == (num_tasks, k, d, d)
    assert info.kl.shape == info.eta.shape == info.accepted.shape == (num_tasks, k)
    assert info.elbo.shape == (num_tasks,)
    np.testing.assert_allclose(np.asarray(logsumexp(new.log_w, -1)), 0.0, atol=1e-5)
    assert np.all(np.triu(np.asarray(new.chol), 1) == 0)
    # Tasks with different data end up with different posteriors (vmap really splits them).
    assert not np.allclose(np.asarray(new.mean[0]), np.asarray(new.mean[1]))

    out = jax.jit(jax.vmap(lambda kk, xi, yi, mi: model.sample(params, kk, xi, yi, mi, 7)))(
        keys, x, y, mask)
    assert out.z.shape == (num_tasks, 7, d) and out.log_w.shape == (num_tasks, 7)
    assert np.all(np.isfinite(np.asarray(out.log_w)))


def test_volpp_gmm_prior_option_and_posterior_start():
    config = gmm_config.get_config()
    config.gmm.prior_components = config.gmm.num_components
    model = gmm_np.from_config(config, dim_y=1)
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    prior, start = params["prior"], params["posterior_init"]
    assert prior.mean.shape == (7, 3) and prior.chol.shape == (7, 3, 3)
    np.testing.assert_allclose(np.exp(np.asarray(prior.log_w)), 1 / 7, rtol=1e-6)
    for a, b in zip(prior, start, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    z = jnp.array([0.3, -0.2, 1.0])
    dens = np.mean([np.exp(-0.5 * np.sum((z - m) ** 2)) for m in np.asarray(prior.mean)])
    np.testing.assert_allclose(float(model.log_prior(params, z)),
                               np.log(dens) - 1.5 * np.log(2 * np.pi), rtol=1e-5)
    # The default prior is N(0, I), the K starting components are spread draws from it.
    default = gmm_np.from_config(gmm_config.get_config(), dim_y=1).init(jax.random.PRNGKey(0), 1, 1)
    assert default["prior"].mean.shape == (1, 3)
    assert default["posterior_init"].mean.shape == (7, 3)


def test_context_sets_cycle_sizes_and_full_task_option():
    masks = gmm_np.context_set_masks(jax.random.PRNGKey(0), 3, 16, 32)
    assert masks.shape == (3, 32, 16)
    sizes = np.asarray(masks.sum(-1))
    np.testing.assert_array_equal(sizes[0], np.resize(np.arange(1, 17), 32))
    assert np.all(sizes == sizes[:1])
    assert not np.array_equal(np.asarray(masks[0]), np.asarray(masks[1]))
    full = gmm_np.context_set_masks(jax.random.PRNGKey(0), 3, 16, 0)
    assert full.shape == (3, 1, 16) and float(full.min()) == 1.0


@pytest.mark.slow
def test_train_and_evaluate_writes_run_files(tmp_path, data_dir, monkeypatch):
    config = gmm_config.get_config()
    config.data.update(dict(num_tasks=8, num_points=8, num_test_points=16,
                            num_validation_tasks=4, num_test_tasks=4, data_dir=data_dir))
    config.model.dim_z = 2
    config.gmm.update(dict(num_components=2, num_samples_per_component=4, num_context_sets=2,
                           batch_size=8, num_decoder_samples=4, num_test_steps=4,
                           validate_every=3))
    config.train.update(dict(num_steps=6, log_every=3, checkpoint_every=3))
    config.eval.update(dict(context_sizes=(0, 2, 8), num_particles=16, task_chunk=4,
                            validation_particles=8, plot_tasks=2, plot_context_sizes=(0, 2)))
    workdir = str(tmp_path / "gmm")
    summary = experiment.train_and_evaluate(config, workdir)

    for name in ("config.json", "metrics.jsonl", "eval.json", "predictions.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    assert os.listdir(os.path.join(workdir, "checkpoints", "last"))
    assert os.listdir(os.path.join(workdir, "checkpoints", "best"))
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    train_records = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_records] == [3, 6]
    assert all({"step", "loss", "elbo", "steps_per_sec"} <= set(r) for r in train_records)
    assert any("val_lmlhd_snis" in r for r in records)
    with open(os.path.join(workdir, "eval.json")) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(summary))
    assert set(saved["context_sizes"]) == {"0", "2", "8"}
    keys = {"lmlhd_snis_median", "lmlhd_mc_median", "lmlhd_snis_median_per_point",
            "lmlhd_mc_median_per_point", "elbo_median", "mse_median", "ess_median"}
    assert keys <= set(saved["average"])
    assert all(keys <= set(s) for s in saved["context_sizes"].values())
    assert saved["wall_time_s"] > 0 and saved["test_time"]["per_task_s"] > 0
    assert saved["test_time"]["num_particles"] == config.eval.num_particles
    assert saved["method"] == "gmm" and saved["num_test_steps"] == 4
    assert all(np.isfinite(v) for v in saved["average"].values())

    # Running again resumes the decoder and every meta-training posterior from the checkpoint.
    again = experiment.train(config, workdir)
    again.checkpoints.close()
    assert int(again.state.step) == 6
    assert again.state.extra.mean.shape == (8 * 2, 2, 2)
    # The memory of the per-task state (the T sweep reports it): 16 mixtures of it, measured.
    assert saved["posterior_state_bytes"] == sum(
        np.asarray(a).nbytes for a in jax.tree.leaves(again.state.extra))
    assert not np.allclose(np.asarray(again.state.extra.mean),
                           np.asarray(again.state.params["posterior_init"].mean)[None])

    # A finished run restores for evaluation without its training set-up (no mixtures, no
    # optimiser state): the best checkpoint's parameters, the step eval.json names.
    best = again.checkpoints.restore_best(again.state)
    with monkeypatch.context() as patch:
        patch.setattr(gmm_np, "context_set_masks", _must_not_run)
        patch.setattr(gmm_np, "init_state", _must_not_run)
        restored = experiment.restore(workdir)
    assert restored.step == saved["checkpoint_step"] == int(best.step)
    chex.assert_trees_all_equal(restored.params, best.params)
    assert restored.evaluation.describe["posterior_state_bytes"] == saved["posterior_state_bytes"]


def _must_not_run(*args, **kwargs):
    raise AssertionError("restore built the training set-up")


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted_with_gmm_prior(tmp_path, data_dir):
    def config():
        c = gmm_config.get_config()
        c.data.update(dict(num_tasks=8, num_points=8, num_test_points=16,
                           num_validation_tasks=4, num_test_tasks=4, data_dir=data_dir))
        c.model.dim_z = 2
        c.gmm.update(dict(num_components=2, prior_components=2, num_samples_per_component=4,
                          num_context_sets=2, batch_size=4, num_decoder_samples=4))
        c.train.update(dict(num_steps=8, log_every=2, checkpoint_every=2))
        return c

    full = experiment.train(config(), str(tmp_path / "full"))
    full.checkpoints.close()
    part = experiment.train(config(), str(tmp_path / "resumed"), stop_after=4)
    part.checkpoints.close()
    resumed = experiment.train(config(), str(tmp_path / "resumed"))
    resumed.checkpoints.close()
    assert int(resumed.state.step) == int(full.state.step) == 8
    # Batches, keys and posteriors all continue exactly (4 subtasks per step, 4 per epoch).
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with open(tmp_path / "resumed" / "metrics.jsonl") as f:
        assert [json.loads(line)["step"] for line in f] == [2, 4, 6, 8]
