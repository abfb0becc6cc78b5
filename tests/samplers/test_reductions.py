"""Exact reductions: zero-initialised networks make MCD and CMCD into ULA and LDVI into UHA.

Each sampler is jitted on its own, as a user would run it, so the comparison also covers XLA
making different fusion choices for the two programs.
"""

import distrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import samplers
from tests.samplers import common
from tests.samplers import targets as tg

NUM_PARTICLES = 256
DIM_EMBEDDING = 3
IDENTITY = (jnp.ones(5), jnp.zeros(5))  # no change of coordinates (see test_whitening)


def _run(name, params, key, e):
    return common.gaussian_run(name, NUM_PARTICLES)[1](params, key, e, *IDENTITY)


def _init_pair(base_name, name, perturb_schedule):
    """Params of `base_name` and of `name` with the same schedule (perturbed or default)."""
    base, _ = common.gaussian_run(base_name, NUM_PARTICLES)
    other, _ = common.gaussian_run(name, NUM_PARTICLES)
    p_base = base.init(jax.random.key(0), 5, DIM_EMBEDDING)
    p_other = other.init(jax.random.key(1), 5, DIM_EMBEDDING)
    if perturb_schedule:
        p_base = common.perturb(p_base, jax.random.key(2), scale=1.0)
    # Everything the base sampler has (schedule, damping, mass) is shared; only `net` is extra.
    p_other = dict(p_other, **p_base)
    return p_base, p_other


@pytest.mark.parametrize("perturb_schedule", [False, True])
@pytest.mark.parametrize("name", ["mcd", "cmcd"])
def test_zero_network_is_ula_bit_for_bit(name, perturb_schedule):
    p_ula, p_other = _init_pair("ula", name, perturb_schedule)
    key, e = jax.random.key(3), jnp.linspace(-1.0, 1.0, DIM_EMBEDDING)
    z_ula, lw_ula = _run("ula", p_ula, key, e)
    z, lw = _run(name, p_other, key, e)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_ula))
    np.testing.assert_array_equal(np.asarray(lw), np.asarray(lw_ula))
    if perturb_schedule:
        # The perturbation must reach the dynamics, or this case tests nothing new.
        _, lw_default = _run("ula", _init_pair("ula", name, False)[0], key, e)
        assert not np.allclose(lw_ula, lw_default)


@pytest.mark.parametrize("perturb_schedule", [False, True])
def test_zero_network_ldvi_is_uha(perturb_schedule):
    p_uha, p_ldvi = _init_pair("uha", "ldvi", perturb_schedule)
    key, e = jax.random.key(3), jnp.linspace(-1.0, 1.0, DIM_EMBEDDING)
    z_uha, lw_uha = _run("uha", p_uha, key, e)
    z, lw = _run("ldvi", p_ldvi, key, e)
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z_uha))
    # The extra `+ (1 - eta^2) M * 0` term may be contracted differently by XLA: rounding only.
    np.testing.assert_allclose(np.asarray(lw), np.asarray(lw_uha), rtol=1e-5, atol=1e-5)


def test_zero_network_ldvi_is_uha_exactly_in_float64():
    target = tg.correlated_gaussian()
    with jax.enable_x64(True):
        mean = jnp.asarray(target.q0_mean, jnp.float64)
        scale = jnp.asarray(target.q0_scale, jnp.float64)
        e = jnp.linspace(-1.0, 1.0, DIM_EMBEDDING, dtype=jnp.float64)
        runs = {}
        for name in ("uha", "ldvi"):
            sampler = common.make(name)
            runs[name] = (sampler, jax.jit(lambda p, k, s=sampler: s.run(
                p, k, target.log_prob, mean, scale, e, NUM_PARTICLES)))
        p_uha = runs["uha"][0].init(jax.random.key(0), 5, DIM_EMBEDDING)
        p_ldvi = runs["ldvi"][0].init(jax.random.key(1), 5, DIM_EMBEDDING)
        for p in (p_uha, common.perturb(p_uha, jax.random.key(2), scale=1.0)):
            uha = runs["uha"][1](p, jax.random.key(3))
            ldvi = runs["ldvi"][1](dict(p_ldvi, **p), jax.random.key(3))
            assert uha.z.dtype == jnp.float64 and uha.log_w.dtype == jnp.float64
            np.testing.assert_array_equal(np.asarray(ldvi.z), np.asarray(uha.z))
            np.testing.assert_array_equal(np.asarray(ldvi.log_w), np.asarray(uha.log_w))


def test_gaussian_log_w_matches_distrax():
    target = tg.correlated_gaussian()
    mean = jnp.asarray(target.q0_mean) + jnp.arange(5.0) / 10
    scale = jnp.asarray(target.q0_scale) * jnp.linspace(0.5, 2.0, 5)
    sampler = samplers.get("gaussian")
    num = 4096
    out = jax.jit(lambda k: sampler.run({}, k, target.log_prob, mean, scale, common.EMPTY, num))(
        jax.random.key(4))
    z = np.asarray(out.z, np.float64)
    with jax.enable_x64(True):
        q0 = distrax.Independent(
            distrax.Normal(jnp.asarray(mean, jnp.float64), jnp.asarray(scale, jnp.float64)), 1)
        zz = jnp.asarray(z, jnp.float64)
        expected = jax.vmap(target.log_prob)(zz) - q0.log_prob(zz)
    np.testing.assert_allclose(np.asarray(out.log_w), np.asarray(expected), rtol=1e-5, atol=1e-4)
    # The particles are q0 samples: moments within ~4 standard errors.
    se_mean = np.asarray(scale) / np.sqrt(num)
    assert np.all(np.abs(z.mean(0) - np.asarray(mean)) < 4 * se_mean)
    assert np.all(np.abs(z.std(0) / np.asarray(scale) - 1) < 4 / np.sqrt(2 * num))


@pytest.mark.parametrize("base_name, name", [("ula", "mcd"), ("uha", "ldvi"), ("ula", "cmcd")])
def test_trained_network_moves_particles_only_in_cmcd(base_name, name):
    """MCD and LDVI learn only the backward kernel: with any network their particles are the
    base sampler's and only log w changes. CMCD's control is in the forward drift."""
    p_base, p_other = _init_pair(base_name, name, perturb_schedule=True)
    p_other = dict(p_other, net=common.perturb(p_other["net"], jax.random.key(4), scale=0.1))
    key, e = jax.random.key(3), jnp.linspace(-1.0, 1.0, DIM_EMBEDDING)
    z_base, lw_base = _run(base_name, p_base, key, e)
    z, lw = _run(name, p_other, key, e)
    assert not np.allclose(lw, lw_base, rtol=1e-3, atol=1e-3)
    if name == "cmcd":
        assert not np.allclose(z, z_base, rtol=1e-3, atol=1e-3)
    else:
        np.testing.assert_array_equal(np.asarray(z), np.asarray(z_base))



def test_gaussian_with_the_exact_correlated_posterior_has_constant_weights():
    """q0 = the target itself, given by its mean and a lower-triangular Cholesky factor: every
    log weight equals log Z (a diagonal q0 cannot do this on a correlated target)."""
    mu = np.array([1.0, -0.5, 0.3, 1.5, 0.0])
    cov = np.array([[0.17, 0.08, -0.05, 0.29, 0.09], [0.08, 0.51, 0.19, 0.30, 0.38],
                    [-0.05, 0.19, 0.83, 0.08, 0.30], [0.29, 0.30, 0.08, 1.52, 0.46],
                    [0.09, 0.38, 0.30, 0.46, 0.82]])  # tg.correlated_gaussian's
    target = tg.correlated_gaussian()
    sampler = samplers.get("gaussian")
    chol = jnp.asarray(np.linalg.cholesky(cov), jnp.float32)
    out = jax.jit(lambda k: sampler.run({}, k, target.log_prob, jnp.asarray(mu, jnp.float32),
                                        chol, common.EMPTY, 512))(jax.random.key(5))
    np.testing.assert_allclose(np.asarray(out.log_w), target.log_z, atol=2e-3)
    diag = jax.jit(lambda k: sampler.run({}, k, target.log_prob, jnp.asarray(mu, jnp.float32),
                                         jnp.sqrt(jnp.diagonal(jnp.asarray(cov, jnp.float32))),
                                         common.EMPTY, 512))(jax.random.key(5))
    assert np.std(np.asarray(diag.log_w)) > 0.3
