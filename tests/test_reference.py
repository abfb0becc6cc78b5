"""AIS reference (amvi_jax.reference) against targets whose log Z is known in closed form.

Reference values are computed in float64 numpy, independently of the float32 jnp densities that
AIS sees. Initial Gaussians are deliberately off-centre and mis-scaled where the caller would
not pass the prior, so a wrong whitening Jacobian shows up in log Z-hat.
"""

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import logsumexp

from amvi_jax import reference
from amvi_jax.reference import AISConfig, ais

TOL = 0.05  # nats: the bar the evaluation relies on, at the default config
_LOG_2PI = math.log(2 * math.pi)


class Target(NamedTuple):
    log_prob: object  # z [d] -> []
    log_z: float
    init_mean: np.ndarray  # [d]
    init_scale: np.ndarray  # [d]


def _np_log_mvn(x, mean, cov) -> float:
    diff = np.asarray(x, np.float64) - mean
    _, logdet = np.linalg.slogdet(cov)
    return float(-0.5 * (diff @ np.linalg.solve(cov, diff) + logdet + len(mean) * _LOG_2PI))


def correlated_gaussian() -> Target:
    """gamma(z) = exp(-0.5 (z - mu)^T Lambda (z - mu) + 1.3) in 5-d: covariance eigenvalues
    0.05 .. 2 (condition number 40) in a random rotation; log Z = 1.3 + log((2 pi)^(5/2)
    det(Lambda)^(-1/2)) ~ 3.9."""
    rng = np.random.default_rng(7)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    precision = rotation @ np.diag(1.0 / np.array([0.05, 0.2, 0.5, 1.0, 2.0])) @ rotation.T
    mu = np.array([1.0, -0.5, 0.3, 1.5, 0.0])
    const = 1.3
    log_z = const + 2.5 * _LOG_2PI - 0.5 * np.linalg.slogdet(precision)[1]
    prec32, mu32 = jnp.asarray(precision, jnp.float32), jnp.asarray(mu, jnp.float32)

    def log_prob(z):
        diff = z - mu32
        return -0.5 * diff @ (prec32 @ diff) + const

    return Target(log_prob, float(log_z), np.array([0.5, 0.0, -0.5, 0.0, 0.2], np.float32),
                  np.full(5, 1.5, np.float32))


def gaussian_mixture() -> Target:
    """exp(-0.8) [0.25 N(m1, S1) + 0.75 N(m2, S2)] in 2-d; the modes are > 10 component stds
    apart, one of them correlated, so no particle crosses between them."""
    weights = np.array([0.25, 0.75])
    means = np.array([[-3.0, -1.0], [2.0, 1.5]])
    covs = np.array([[[0.25, 0.06], [0.06, 0.16]], [[0.36, 0.0], [0.0, 0.09]]])
    log_const = -0.8
    chol_inv = jnp.asarray(np.linalg.inv(np.linalg.cholesky(covs)), jnp.float32)
    log_norm = jnp.asarray(np.log(weights) - 0.5 * np.linalg.slogdet(covs)[1] - _LOG_2PI,
                           jnp.float32)
    means32 = jnp.asarray(means, jnp.float32)

    def log_prob(z):
        white = jnp.einsum("kij,kj->ki", chol_inv, z - means32)
        return logsumexp(log_norm - 0.5 * jnp.sum(white**2, -1)) + log_const

    return Target(log_prob, log_const, np.zeros(2, np.float32), np.array([3.0, 2.0], np.float32))


class BLRData(NamedTuple):
    a: np.ndarray  # [N, d]
    y: np.ndarray  # [N]


BLR_NOISE, BLR_OFFSET = 0.3, 0.5


def blr_data(seed: int, num_points: int = 20, dim: int = 3) -> BLRData:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(num_points, dim))
    y = a @ rng.normal(size=dim) + BLR_OFFSET + BLR_NOISE * rng.normal(size=num_points)
    return BLRData(a.astype(np.float32), y.astype(np.float32))


def blr_log_prob(a, y):
    """gamma(z) = N(z; 0, I) prod_n N(y_n; a_n . z + c, s^2), for arrays a [N, d], y [N]."""
    def log_prob(z):
        resid = y - a @ z - BLR_OFFSET
        return (-0.5 * jnp.sum(z**2) - 0.5 * z.shape[0] * _LOG_2PI
                - 0.5 * jnp.sum(resid**2) / BLR_NOISE**2
                - y.shape[0] * (math.log(BLR_NOISE) + 0.5 * _LOG_2PI))
    return log_prob


def blr_exact(data: BLRData):
    """-> (log Z, posterior mean): y ~ N(c 1, A A^T + s^2 I) marginally."""
    a, y = data.a.astype(np.float64), data.y.astype(np.float64)
    log_z = _np_log_mvn(y, np.full(len(y), BLR_OFFSET), a @ a.T + BLR_NOISE**2 * np.eye(len(y)))
    post_prec = np.eye(a.shape[1]) + a.T @ a / BLR_NOISE**2
    post_mean = np.linalg.solve(post_prec, a.T @ (y - BLR_OFFSET) / BLR_NOISE**2)
    return log_z, post_mean


def blr_target(seed: int = 0) -> Target:
    """d = 3, 20 points, from the prior N(0, I) as a caller without an encoder would."""
    data = blr_data(seed)
    return Target(blr_log_prob(jnp.asarray(data.a), jnp.asarray(data.y)), blr_exact(data)[0],
                  np.zeros(3, np.float32), np.ones(3, np.float32))


TARGETS = {"gauss5d": correlated_gaussian, "mixture2d": gaussian_mixture, "blr3d": blr_target}


@functools.cache
def _run(name: str, config: AISConfig, seed: int = 0) -> reference.AISOutput:
    target = TARGETS[name]()
    run = jax.jit(lambda key: ais(key, target.log_prob, target.init_mean, target.init_scale,
                                  config))
    return jax.device_get(run(jax.random.key(seed)))


def test_reference_values_agree_with_a_direct_computation():
    """The closed forms above, checked once against brute force in float64."""
    grid = np.linspace(-6, 6, 1201)
    zz = np.stack(np.meshgrid(grid, grid, indexing="ij"), -1).reshape(-1, 2)
    with jax.enable_x64(True):
        target = gaussian_mixture()
        logp = np.asarray(jax.vmap(target.log_prob)(jnp.asarray(zz, jnp.float64)))
    riemann = logsumexp(logp) + 2 * math.log(grid[1] - grid[0])
    assert float(riemann) == pytest.approx(target.log_z, abs=1e-4)
    data = blr_data(0)
    log_z, _ = blr_exact(data)
    chain_rule = sum(  # log p(y) = sum_n log p(y_n | y_<n) by sequential conjugate updates
        _np_log_mvn([yn], [an @ m + BLR_OFFSET], [[an @ c @ an + BLR_NOISE**2]])
        for an, yn, m, c in _sequential_posteriors(data))
    assert chain_rule == pytest.approx(log_z, abs=1e-8)


def _sequential_posteriors(data: BLRData):
    a, y = data.a.astype(np.float64), data.y.astype(np.float64)
    mean, cov = np.zeros(a.shape[1]), np.eye(a.shape[1])
    for an, yn in zip(a, y, strict=True):
        yield an, yn, mean, cov
        gain = cov @ an / (an @ cov @ an + BLR_NOISE**2)
        mean = mean + gain * (yn - an @ mean - BLR_OFFSET)
        cov = cov - np.outer(gain, an @ cov)


@pytest.mark.parametrize("name,transition", [
    ("gauss5d", "hmc"), ("gauss5d", "mala"), ("mixture2d", "hmc"), ("blr3d", "hmc"),
    ("blr3d", "mala")])
def test_log_z_within_tolerance_at_default_config(name, transition):
    out = _run(name, AISConfig(transition=transition))
    error = float(out.log_z) - TARGETS[name]().log_z
    print(f"{name} {transition}: log Z-hat - log Z = {error:+.4f}, ESS = {float(out.ess):.0f}")
    assert abs(error) < TOL
    assert out.log_w.shape == (1024,) and out.z.shape[0] == 1024
    assert np.all(np.isfinite(out.log_w))
    assert 1.0 <= float(out.ess) <= 1024 * (1 + 1e-5)
    # A correct reference is more than unbiased: its weights are nearly equal.
    assert float(out.ess) > 0.5 * 1024


def test_blr_particles_are_weighted_posterior_draws():
    out = _run("blr3d", AISConfig())
    _, post_mean = blr_exact(blr_data(0))
    weights = np.exp(out.log_w - logsumexp(out.log_w))
    # Posterior std ~0.07 and ESS > 500: the weighted mean is good to ~0.003.
    np.testing.assert_allclose(weights @ out.z, post_mean, atol=0.015)


def test_mixture_mode_masses_are_recovered():
    """Particles cannot cross between the modes: the weights must fix the 0.25 / 0.75 split."""
    out = _run("mixture2d", AISConfig())
    weights = np.exp(out.log_w - logsumexp(out.log_w))
    assert float(weights @ (out.z[:, 0] < 0)) == pytest.approx(0.25, abs=0.03)


# 1-d, target 2.5 x narrower than q0 and 1.2 q0-stds off: IS weights with a finite variance.
_EXACT_TARGET = Target(lambda z: -0.5 * jnp.sum(((z - 1.2) / 0.4) ** 2) + 0.7, 0.7 +
                       0.5 * _LOG_2PI + math.log(0.4), np.zeros(1, np.float32),
                       np.ones(1, np.float32))


@pytest.mark.parametrize("config", [
    AISConfig(num_temperatures=3, num_particles=1 << 15),
    # Big, often rejected steps: without the MH correction the kernel would not be invariant.
    AISConfig(num_temperatures=3, num_particles=1 << 15, transition="mala", target_accept=0.2,
              max_trajectory_length=5.0, step_size_init=3.0),
], ids=["hmc", "mala-big-steps"])
def test_weights_are_exact_with_few_temperatures(config):
    """E[w] = Z for any number of temperatures. With K = 3 the kernels move particles far between
    increments, so an increment taken after the move or a kernel that does not leave pi_k
    invariant biases the mean weight by far more than its standard error."""
    target = _EXACT_TARGET
    out = jax.jit(lambda key: ais(key, target.log_prob, target.init_mean, target.init_scale,
                                  config))(jax.random.key(3))
    w = np.exp(np.asarray(out.log_w, np.float64) - target.log_z)
    std_err = np.std(w) / np.mean(w) / math.sqrt(w.size)
    error = float(out.log_z) - target.log_z
    print(f"K=3 {config.transition}: log mean w - log Z = {error:+.4f} (std err {std_err:.4f})")
    assert abs(error) < 4 * std_err + 1e-3


def test_vmap_over_tasks_equals_loop():
    config = AISConfig(num_temperatures=64, num_particles=128, num_pilot_particles=32)
    tasks = [blr_data(seed) for seed in (1, 2, 3)]
    a = jnp.asarray(np.stack([t.a for t in tasks]))
    y = jnp.asarray(np.stack([t.y for t in tasks]))
    keys = jax.random.split(jax.random.key(5), len(tasks))
    mean, scale = jnp.zeros(3), jnp.ones(3)

    def one(key, a, y):
        return ais(key, blr_log_prob(a, y), mean, scale, config)

    batched = jax.jit(jax.vmap(one))(keys, a, y)
    single = jax.jit(one)
    for i in range(len(tasks)):
        looped = single(keys[i], a[i], y[i])
        for field in reference.AISOutput._fields:
            np.testing.assert_allclose(getattr(batched, field)[i], getattr(looped, field),
                                       rtol=1e-4, atol=1e-4, err_msg=field)
    log_z_exact = np.array([blr_exact(t)[0] for t in tasks])
    # 64 temperatures, 128 particles: still a usable estimate.
    np.testing.assert_allclose(batched.log_z, log_z_exact, atol=0.3)


def test_acceptance_after_adaptation():
    """MALA's eps adapts to its target rate; HMC's either does too or sits at the
    trajectory-length cap with acceptance above target (module docstring)."""
    burn_in = 32
    mala = _run("blr3d", AISConfig(transition="mala"))
    assert abs(float(np.mean(mala.acceptance[burn_in:])) - 0.574) < 0.05
    hmc = _run("blr3d", AISConfig())
    acc, eps = hmc.acceptance[burn_in:], hmc.step_size[burn_in:]
    cap = AISConfig().max_trajectory_length / AISConfig().num_leapfrog
    at_cap = eps >= cap * (1 - 1e-5)
    assert np.all(np.where(at_cap, acc > 0.6, np.abs(acc - 0.65) < 0.1))
    assert 0.3 <= float(np.mean(hmc.acceptance)) <= 0.99
    assert np.all((eps > 0) & (eps <= cap * (1 + 1e-5)))


def test_adaptation_reaches_target_when_the_cap_does_not_bind():
    """Without the mass matrix the posterior (std ~0.07 of the prior's) needs eps << cap."""
    config = AISConfig(num_temperatures=128, num_particles=256, precondition="none")
    out = _run("blr3d", config)
    late = out.acceptance[64:]
    assert abs(float(np.mean(late)) - 0.65) < 0.05
    assert float(out.step_size[-1]) < 0.5 * config.max_trajectory_length / config.num_leapfrog


@pytest.mark.parametrize("schedule", reference.SCHEDULES)
def test_schedule_endpoints_and_shape(schedule):
    config = AISConfig(num_temperatures=512, schedule=schedule)
    beta = np.asarray(reference.annealing_schedule(config))
    assert beta.shape == (513,) and beta[0] == 0.0 and beta[-1] == 1.0
    assert np.all(np.diff(beta) >= 0)
    if schedule != "linear":  # crowds beta = 0: the first 10% of the steps cover < 5%
        assert beta[51] < 0.05


@pytest.mark.parametrize("overrides,field", [
    (dict(num_temperatures=0), "num_temperatures"),
    (dict(num_particles=0), "num_particles"),
    (dict(transition="nuts"), "transition"),
    (dict(num_leapfrog=0), "num_leapfrog"),
    (dict(num_mcmc_steps=0), "num_mcmc_steps"),
    (dict(step_size_init=0.0), "step_size_init"),
    (dict(step_size_init=-0.1), "step_size_init"),
    (dict(step_size_min=0.0), "step_size_min"),
    (dict(max_trajectory_length=0.0), "max_trajectory_length"),
    (dict(target_accept=1.0), "target_accept"),
    (dict(adapt_rate=-1.0), "adapt_rate"),
    (dict(schedule="cosine"), "schedule"),
    (dict(schedule_param=0.0), "schedule_param"),
    (dict(precondition="chol"), "precondition"),
    (dict(num_pilot_particles=-1), "num_pilot_particles"),
    (dict(num_pilot_particles=0), "num_pilot_particles"),  # adaptation needs pilots
    (dict(num_pilot_particles=3), "num_pilot_particles"),  # full covariance in 3-d needs 4
])
def test_bad_config_raises_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"AISConfig\.{field}=") as info:
        ais(jax.random.key(0), lambda z: -0.5 * jnp.sum(z**2), jnp.zeros(3), jnp.ones(3),
            AISConfig(**overrides))
    if field == "transition":
        assert "hmc, mala" in str(info.value)


def test_fixed_kernels_without_pilots():
    """num_pilot_particles = 0 is allowed when nothing adapts: plain, non-adaptive AIS."""
    config = AISConfig(num_temperatures=256, num_particles=512, num_pilot_particles=0,
                       adapt_rate=0.0, precondition="none", step_size_init=0.05)
    out = _run("blr3d", config)
    np.testing.assert_allclose(out.step_size, 0.05, rtol=1e-6)
    assert abs(float(out.log_z) - TARGETS["blr3d"]().log_z) < 0.3


# ------------------------------------------------------------------------------------------
# resample_move: the test-time refinement after a sampler (amvi_jax.samplers.refine).


def _weighted_proposal(target: Target, num_particles: int, seed: int = 0):
    """Exact importance weights of draws from N(init_mean, init_scale^2) to `target`."""
    key = jax.random.key(seed)
    z = target.init_mean + target.init_scale * jax.random.normal(
        key, (num_particles, target.init_mean.shape[0]))
    log_q = jnp.sum(-0.5 * ((z - target.init_mean) / target.init_scale) ** 2
                    - jnp.log(target.init_scale) - 0.5 * _LOG_2PI, -1)
    return z, jax.vmap(target.log_prob)(z) - log_q


def test_resample_move_keeps_z_hat_and_reaches_the_posterior_covariance():
    """From a broad proposal (ESS a few % of P) onto the 5-d correlated Gaussian: the weights
    returned are log Z-hat of the input exactly, and after the moves the P equally weighted
    particles have the target's mean and covariance, which the resampled copies alone (about
    ESS distinct points) estimate far worse."""
    target = correlated_gaussian()
    z, log_w = _weighted_proposal(target, 4096)
    rng = np.random.default_rng(7)
    rotation, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    cov = rotation @ np.diag([0.05, 0.2, 0.5, 1.0, 2.0]) @ rotation.T
    moved, new_log_w, acceptance = jax.jit(
        lambda k: reference.resample_move(k, target.log_prob, z, log_w, 32))(jax.random.key(1))
    np.testing.assert_array_equal(np.asarray(new_log_w),
                                  np.full(4096, logsumexp(log_w) - math.log(4096), np.float32))
    moved = np.asarray(moved, np.float64)
    np.testing.assert_allclose(moved.mean(0), [1.0, -0.5, 0.3, 1.5, 0.0], atol=0.1)
    np.testing.assert_allclose(np.cov(moved.T), cov, atol=0.12)
    assert len(np.unique(moved[:, 0])) > 4000  # copies of the same particle moved apart
    assert 0.3 < float(acceptance[-1]) < 1.0


def test_resample_move_leaves_exact_draws_exact_with_big_steps():
    """Equally weighted exact draws of N(1.2, 0.4^2) stay exact draws through 20 moves whose
    steps are too big for an uncorrected kernel (acceptance ~0.2): mean, variance and kurtosis
    stay the target's. Dropping the Metropolis correction, or a wrong proposal density in it,
    changes the variance by far more than the tolerance."""
    num = 1 << 14
    z = 1.2 + 0.4 * jax.random.normal(jax.random.key(3), (num, 1))
    config = AISConfig(transition="mala", target_accept=0.2, step_size_init=3.0,
                       max_trajectory_length=5.0)
    moved, _, acceptance = jax.jit(lambda k: reference.resample_move(
        k, _EXACT_TARGET.log_prob, z, jnp.zeros(num), 20, config))(jax.random.key(4))
    moved = np.asarray(moved[:, 0], np.float64)
    assert float(np.mean(acceptance)) < 0.5
    assert moved.mean() == pytest.approx(1.2, abs=0.02)
    assert moved.var() == pytest.approx(0.16, rel=0.05)
    assert np.mean(((moved - 1.2) / 0.4) ** 4) == pytest.approx(3.0, abs=0.25)


def test_resample_move_spreads_a_population_resampled_from_one_particle():
    """All the weight on one particle: resampling gives P copies of it, and the moves must still
    spread them over the target (the preconditioner's floor), not leave them stacked."""
    target = correlated_gaussian()
    z, _ = _weighted_proposal(target, 512)
    log_w = jnp.full(512, -jnp.inf).at[7].set(0.0)
    moved, new_log_w, _ = jax.jit(lambda k: reference.resample_move(
        k, target.log_prob, z, log_w, 32))(jax.random.key(2))
    assert float(new_log_w[0]) == pytest.approx(-math.log(512), rel=1e-6)
    assert len(np.unique(np.asarray(moved[:, 0]))) > 450
    assert float(jnp.min(jnp.var(moved, axis=0))) > 0.01


def test_resample_move_rejects_bad_input():
    target = correlated_gaussian()
    z, log_w = _weighted_proposal(target, 16)
    with pytest.raises(ValueError, match="num_moves=0"):
        reference.resample_move(jax.random.key(0), target.log_prob, z, log_w, 0)
    with pytest.raises(AssertionError, match="expected"):  # chex: [P] weights for [P, d] z
        reference.resample_move(jax.random.key(0), target.log_prob, z, log_w[:8], 4)
