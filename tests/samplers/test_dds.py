"""DDS: zero drift is exactly the Gaussian sampler; its schedules have no annealing path; its
options and their errors. (The interface, known-normaliser and whitening tests run on every
registered sampler, DDS included.)"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import samplers
from tests.samplers import common
from tests.samplers import targets as tg

NUM_PARTICLES = 4096
DIM_EMBEDDING = 3
IDENTITY = (jnp.ones(5), jnp.zeros(5))


@pytest.mark.parametrize("perturb_schedule", [False, True])
def test_zero_drift_dds_is_the_gaussian_sampler(perturb_schedule):
    """With zero network and guidance, DDS runs the exact OU chain that leaves q0 invariant:
    its particles are q0 samples and each weight is log gamma(z) - log q0(z), whatever the
    noise fractions alpha_k (so a warm-started DDS starts as the Gaussian it came from)."""
    target = tg.correlated_gaussian()
    mean, scale = np.asarray(target.q0_mean), np.asarray(target.q0_scale)
    sampler, run = common.gaussian_run("dds", NUM_PARTICLES)
    params = sampler.init(jax.random.key(0), 5, DIM_EMBEDDING)
    if perturb_schedule:
        params = dict(params, a=params["a"] + jax.random.normal(jax.random.key(1),
                                                                params["a"].shape))
    z, log_w = run(params, jax.random.key(2), jnp.zeros(DIM_EMBEDDING), *IDENTITY)
    z = np.asarray(z, np.float64)
    with jax.enable_x64(True):
        zz = jnp.asarray(z)
        q0 = distrax.Independent(distrax.Normal(jnp.asarray(mean, jnp.float64),
                                                jnp.asarray(scale, jnp.float64)), 1)
        expected = np.asarray(jax.vmap(target.log_prob)(zz) - q0.log_prob(zz))
    # The telescoping sum of log N(u_k) - log N(u_{k+1}) is exact only up to float32 rounding.
    np.testing.assert_allclose(np.asarray(log_w), expected, rtol=1e-5, atol=2e-3)
    se_mean = scale / np.sqrt(len(z))
    assert np.all(np.abs(z.mean(0) - mean) < 4 * se_mean)
    assert np.all(np.abs(z.std(0) / scale - 1) < 4 / np.sqrt(2 * len(z)))


def test_schedules_function_matches_the_run_and_dds_has_no_annealing():
    """`sampler.schedules(params, e)` is what `run` uses; DDS has step sizes only, and its
    embedding conditioner shifts them alone."""
    target = tg.bayesian_linear_regression()
    mean, scale = jnp.asarray(target.q0_mean), jnp.asarray(target.q0_scale)
    e = jnp.array([1.0, -2.0, 0.5, 3.0])
    for name in ("ldvi", "dds"):
        sampler = common.make(name, num_steps=3, schedule_from_embedding=True)
        params = sampler.init(jax.random.key(0), target.dim, 4)
        params = dict(params, cond=dict(w=0.3 * jnp.ones_like(params["cond"]["w"])))
        out = sampler.run(params, jax.random.key(1), target.log_prob, mean, scale, e, 8)
        direct = sampler.schedules(params, e)
        for field in out.schedules._fields:
            a, b = getattr(out.schedules, field), getattr(direct, field)
            assert (a is None) == (b is None), (name, field)
            if a is not None:
                np.testing.assert_array_equal(a, b)
    assert direct.beta is None and direct.damping is None
    assert params["cond"]["w"].shape == (4, 3)  # [d_e, K]: step sizes only



def test_dds_options_and_their_errors():
    cfg = samplers.default_config("dds")
    assert "learn_schedule" not in cfg and "damping_init" not in cfg and "hidden" in cfg
    with pytest.raises(ValueError, match="learn_schedule"):
        samplers.get("dds", learn_schedule=False)  # no annealing path
    with pytest.raises(ValueError, match="score_clip"):
        samplers.get("dds", score_clip=0.0)
    with pytest.raises(ValueError, match="step_size_init"):
        samplers.get("dds", step_size_init=1.0)  # a noise fraction in (0, step_size_max)
