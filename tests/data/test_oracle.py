"""The Bayes limit: the GP oracle against a brute-force Gaussian, the parametric quadrature
against Monte Carlo over the prior and against a finer grid, the oracle as the best predictor
in expectation, clear errors where there is none, and no trained model above it."""

import json
import os

import jax
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from amvi_jax import evaluate, experiment
from amvi_jax.data import families, oracle

NOISE = 0.25


def _tasks(family, num_tasks, num_points, seed=2000, noise=NOISE):
    x, y, _ = families.generate(family, num_tasks, num_points, noise, seed, seed + 1, seed + 2)
    return x, y


def test_every_benchmark_says_how_its_oracle_is_computed_or_why_it_has_none():
    for name in families.BENCHMARKS:
        assert (name in oracle.ORACLES) != (name in oracle.NO_ORACLE), name
    assert set(oracle.ORACLES) == set(families.SYNTHETIC_FAMILIES)


@pytest.mark.parametrize("benchmark, words", [
    ("digits", "no known generative process"), ("tasks.npz", "from a file"),
    ("tfds:mnist", "real images"), ("sinusoid2d", "unknown benchmark")])
def test_a_benchmark_without_an_oracle_gets_a_clear_error(benchmark, words):
    x, y = _tasks("sinusoid1d", 2, 8)
    with pytest.raises(oracle.NoOracleError, match=words):
        oracle.per_task(benchmark, x, y, [0, 2], NOISE)
    assert "none" in evaluate.oracle_summary(benchmark, NOISE, None, [0])


def test_noise_free_data_and_bad_context_sizes_are_rejected():
    x, y = _tasks("gp_rbf", 2, 8)
    with pytest.raises(oracle.NoOracleError, match="noise_std=0"):
        oracle.per_task("gp_rbf", x, y, [0], 0.0)
    with pytest.raises(ValueError, match="0..8"):
        oracle.per_task("gp_rbf", x, y, [9], NOISE)
    with pytest.raises(ValueError, match=r"\[T, N, 1\]"):
        oracle.per_task("gp_rbf", x[..., 0], y[..., 0], [0], NOISE)


@pytest.mark.parametrize("family", families.GP_FAMILIES)
def test_gp_oracle_equals_brute_force_gaussian_conditioning(family):
    x, y = _tasks(family, 3, 12)
    sizes = [0, 1, 5, 12]
    got = oracle.per_task(family, x, y, sizes, NOISE)
    kernel, var = families.KERNELS[family], NOISE**2
    for t in range(3):
        xt, yt = x[t, :, 0].astype(np.float64), y[t, :, 0].astype(np.float64)
        for n in sizes:
            # Volpp's targets (all points, context again with fresh noise): the joint density
            # of [y_C, y_all] over the duplicated points, which share f (and its jitter),
            # divided by that of y_C.
            idx = np.concatenate([np.arange(n), np.arange(12)])
            k = kernel(xt[idx, None] - xt[None, idx])
            k += families.GP_JITTER * (idx[:, None] == idx[None, :]) + var * np.eye(len(idx))
            joint = multivariate_normal(np.zeros(len(idx)), k).logpdf(yt[idx])
            ctx = multivariate_normal(np.zeros(n), k[:n, :n]).logpdf(yt[:n]) if n else 0.0
            np.testing.assert_allclose(got[n]["lmlhd_oracle"][t], joint - ctx, atol=1e-6)
            # Disjoint targets: the conditional Gaussian, written out.
            full = kernel(xt[:, None] - xt[None, :]) + (families.GP_JITTER + var) * np.eye(12)
            if n < 12:
                c, r = slice(0, n), slice(n, 12)
                gain = full[r, c] @ np.linalg.inv(full[c, c]) if n else np.zeros((12 - n, 0))
                cond = multivariate_normal(gain @ yt[c], full[r, r] - gain @ full[c, r])
                np.testing.assert_allclose(got[n]["lmlhd_oracle_disjoint"][t],
                                           cond.logpdf(yt[r]), atol=1e-6)
            else:
                assert got[n]["lmlhd_oracle_disjoint"][t] == pytest.approx(0.0, abs=1e-9)


def _prior_draws(family, num, rng):
    bounds = families.PARAMETER_BOUNDS[family]
    return {k: rng.uniform(lo, hi, num) for k, (lo, hi) in bounds.items()}


@pytest.mark.parametrize("family", families.PARAMETRIC_FAMILIES)
def test_parametric_oracle_matches_monte_carlo_over_the_prior(family):
    # Few points keep the posterior wide enough for plain Monte Carlo over the prior.
    x, y = _tasks(family, 2, 5, seed=7)
    sizes = [0, 2]
    got = oracle.per_task(family, x, y, sizes, NOISE)
    rng = np.random.default_rng(0)
    num = 1_000_000
    params = _prior_draws(family, num, rng)
    for t in range(2):
        f = families.family_function(family, params, x[t:t + 1, :, 0])
        ll = -0.5 * ((y[t, :, 0][None] - f) ** 2 / NOISE**2 + np.log(2 * np.pi * NOISE**2))
        for n in sizes:
            ctx = ll[:, :n].sum(1)
            for key, target in (("lmlhd_oracle", ll.sum(1)),
                                ("lmlhd_oracle_disjoint", ll[:, n:].sum(1))):
                mc = logsumexp(ctx + target) - logsumexp(ctx)
                # Monte Carlo standard error of the log ratio (delta method, weights w).
                w = np.exp(ctx + target - (ctx + target).max())
                se = np.std(w) / (np.mean(w) * np.sqrt(num))
                assert abs(got[n][key][t] - mc) < 5 * se + 0.01, (family, n, key, mc, se)


@pytest.mark.parametrize("family", families.PARAMETRIC_FAMILIES)
def test_parametric_quadrature_is_converged_on_the_protocol(family):
    # The default protocol's tasks (64 points), including the sharpest posteriors (n = 16 plus
    # all 64 targets): twice the cells per axis moves no task by 0.01 nats.
    x, y = _tasks(family, 4, 64)
    dims = len(oracle.PARAMETRIC[family][0].grid)
    base = oracle.per_task(family, x, y, [0, 1, 16], NOISE)
    fine = oracle.per_task(family, x, y, [0, 1, 16], NOISE, cells=2 * oracle.CELLS[dims])
    for n in base:
        for key in base[n]:
            np.testing.assert_allclose(base[n][key], fine[n][key], atol=0.01)


@pytest.mark.parametrize("family, wrong", [("sinusoid1d", "noise"), ("affine1d", "noise"),
                                           ("gp_rbf", "gp_matern52")])
def test_the_oracle_is_the_best_predictor_in_expectation(family, wrong):
    # On fresh tasks of the family, the true predictive of disjoint targets beats one with the
    # wrong noise or the wrong kernel on average (a proper scoring rule); a mistake in the
    # oracle's weights or conditioning would let the misspecified one win.
    x, y = _tasks(family, 48, 24, seed=11)
    sizes = [0, 4, 12]
    true = oracle.per_task(family, x, y, sizes, NOISE)
    for alt in ([0.2, 0.32] if wrong == "noise" else [NOISE]):
        other = oracle.per_task(family if wrong == "noise" else wrong, x, y, sizes, alt)
        for n in sizes:
            diff = true[n]["lmlhd_oracle_disjoint"] - other[n]["lmlhd_oracle_disjoint"]
            assert diff.mean() > 0, (family, alt, n, diff.mean())


def test_all_targets_reduce_to_disjoint_at_the_empty_context_and_differ_after():
    x, y = _tasks("quadratic1d", 2, 16)
    got = oracle.per_task("quadratic1d", x, y, [0, 4], NOISE)
    np.testing.assert_allclose(got[0]["lmlhd_oracle"], got[0]["lmlhd_oracle_disjoint"])
    # With the context among the targets the predictive scores 4 more points, near their data.
    assert np.all(got[4]["lmlhd_oracle"] != got[4]["lmlhd_oracle_disjoint"])


@pytest.mark.slow
def test_no_trained_model_is_above_the_limit_on_disjoint_targets(tiny_config, tmp_path):
    config = tiny_config
    config.data.update(dict(num_test_tasks=32, num_test_points=16))
    config.train.update(dict(num_steps=300, validate_every=100, checkpoint_every=100,
                             log_every=100))
    workdir = str(tmp_path / "run")
    summary = experiment.train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "eval.json")) as f:
        written = json.load(f)
    for s in written["context_sizes"].values():
        assert s["gap_to_oracle"] == pytest.approx(s["lmlhd_oracle_median"]
                                                   - s["lmlhd_snis_median"])
        assert np.isfinite(s["lmlhd_oracle_disjoint_median"])
    assert summary["oracle"].startswith("exact")
    run = experiment.restore(workdir)
    test = run.dataset.test
    sizes = [0, 2, 8]
    own = evaluate.per_task_metrics(
        evaluate.make_batch_metrics(run.model, 256), run.params, jax.random.PRNGKey(0),
        test.x, test.y, sizes, 8)
    limit = oracle.per_task("sinusoid1d", test.x, test.y, sizes, config.data.noise_std)
    for n in sizes:
        excess = np.asarray(own[n]["lmlhd_snis_disjoint"]) - limit[n]["lmlhd_oracle_disjoint"]
        se = excess.std(ddof=1) / np.sqrt(len(excess))
        assert excess.mean() <= se, (n, excess.mean(), se)
