"""Annealing and step-size schedules: endpoints, monotonicity, ranges, conditioning on e."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax.samplers import base
from tests.samplers import common
from tests.samplers import targets as tg


@pytest.mark.parametrize("per_step", [True, False])
@pytest.mark.parametrize("num_steps", [1, 2, 7, 64])
def test_schedule_invariants_for_random_parameters(num_steps, per_step):
    sampler = common.make("ula", num_steps=num_steps, per_step_step_size=per_step,
                          step_size_max=0.5, step_size_init=0.2)
    params = sampler.init(jax.random.key(0), 3, 0)
    n = 64
    key_b, key_a = jax.random.split(jax.random.key(num_steps))
    b = 4.0 * jax.random.normal(key_b, (n, num_steps))
    b = b.at[0].set(jnp.where(jnp.arange(num_steps) % 2 == 0, -30.0, 30.0))  # extreme slopes
    a = 4.0 * jax.random.normal(key_a, (n, *params["a"].shape))
    beta, eps = jax.jit(jax.vmap(
        lambda b, a: base.schedule(sampler.config, dict(params, b=b, a=a), common.EMPTY)))(b, a)
    beta, eps = np.asarray(beta), np.asarray(eps)
    assert beta.shape == (n, num_steps + 1) and eps.shape == (n, num_steps)
    assert np.all(beta[:, 0] == 0.0) and np.all(beta[:, -1] == 1.0)
    assert np.all(np.diff(beta, axis=1) >= 0.0)
    assert np.all((eps > 0.0) & (eps < 0.5))
    if not per_step:
        assert np.all(eps == eps[:, :1])


def test_default_schedule_is_linear_with_initial_step_size():
    sampler = common.make("uha", num_steps=5, step_size_init=0.05)
    params = sampler.init(jax.random.key(0), 2, 0)
    beta, eps = base.schedule(sampler.config, params, common.EMPTY)
    np.testing.assert_allclose(beta, np.linspace(0.0, 1.0, 6), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(eps, np.full(5, 0.05), rtol=1e-6)


def test_fixed_schedule_ignores_b_and_gets_no_gradient():
    sampler = common.make("ula", num_steps=4, learn_schedule=False)
    params = sampler.init(jax.random.key(0), 2, 0)
    params = dict(params, b=jnp.array([3.0, -2.0, 0.5, 1.0]))

    def mean_beta(b):
        return jnp.mean(base.schedule(sampler.config, dict(params, b=b), common.EMPTY)[0])

    beta, _ = base.schedule(sampler.config, params, common.EMPTY)
    np.testing.assert_allclose(beta, np.linspace(0.0, 1.0, 5), rtol=1e-6, atol=1e-7)
    assert np.all(np.asarray(jax.grad(mean_beta)(params["b"])) == 0.0)


def test_schedule_from_embedding_starts_unconditioned_and_learns():
    target = tg.bayesian_linear_regression()
    mean, scale = jnp.asarray(target.q0_mean), jnp.asarray(target.q0_scale)
    dim_e, k = 4, 6
    cond = common.make("ula", num_steps=k, schedule_from_embedding=True)
    plain = common.make("ula", num_steps=k)
    p_cond = cond.init(jax.random.key(0), target.dim, dim_e)
    p_plain = plain.init(jax.random.key(0), target.dim, dim_e)
    assert p_cond["cond"]["w"].shape == (dim_e, 2 * k)
    assert not p_plain["cond"]  # no conditioner unless asked for

    def loss_fn(sampler):
        def loss(params, embedding):
            out = sampler.run(params, jax.random.key(1), target.log_prob, mean, scale,
                              embedding, 64)
            return -jnp.mean(out.log_w), out
        return jax.jit(jax.value_and_grad(loss, has_aux=True))

    e1, e2 = jnp.array([1.0, -2.0, 0.5, 3.0]), jnp.array([-1.0, 0.0, 2.0, 0.5])
    loss_cond, loss_plain = loss_fn(cond), loss_fn(plain)
    (_, out_c), grads = loss_cond(p_cond, e1)
    (_, out_p), _ = loss_plain(p_plain, e1)
    for field in ("beta", "step_size"):
        np.testing.assert_array_equal(getattr(out_c.schedules, field),
                                      getattr(out_p.schedules, field))
    np.testing.assert_array_equal(out_c.log_w, out_p.log_w)
    w_grad = np.asarray(grads["cond"]["w"])
    assert np.all(np.isfinite(w_grad)) and np.any(w_grad != 0.0)

    p_moved = dict(p_cond, cond=dict(w=0.3 * jax.random.normal(jax.random.key(2), (dim_e, 2 * k))))
    (_, out1), _ = loss_cond(p_moved, e1)
    (_, out2), _ = loss_cond(p_moved, e2)
    for out in (out1, out2):
        beta, eps = np.asarray(out.schedules.beta), np.asarray(out.schedules.step_size)
        assert beta[0] == 0.0 and beta[-1] == 1.0 and np.all(np.diff(beta) >= 0)
        assert np.all((eps > 0) & (eps < cond.config.step_size_max))
    assert not np.allclose(out1.schedules.beta, out2.schedules.beta)
    assert not np.allclose(out1.schedules.step_size, out2.schedules.step_size)

