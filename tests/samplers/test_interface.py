"""The sampler contract: shapes, dtypes, batching over tasks, gradients, options, errors."""

import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from amvi_jax import samplers
from tests.samplers import common
from tests.samplers import targets as tg

NUM_PARTICLES = 32


@functools.cache
def _loss_and_grads(name: str, **overrides):
    """jit of (params, key, mean, scale) -> ((-ELBO, output), grads wrt (params, mean, scale))
    on the BLR posterior with an empty embedding. Cached: several tests share one compile."""
    sampler = common.make(name, **overrides)
    target = tg.bayesian_linear_regression()

    def loss(params, key, mean, scale):
        out = sampler.run(params, key, target.log_prob, mean, scale, common.EMPTY, NUM_PARTICLES)
        return -jnp.mean(out.log_w), out

    return sampler, jax.jit(jax.value_and_grad(loss, argnums=(0, 2, 3), has_aux=True))


def _blr_inputs():
    target = tg.bayesian_linear_regression()
    return target, jnp.asarray(target.q0_mean), jnp.asarray(target.q0_scale)


def _all_finite(tree) -> bool:
    return all(bool(np.all(np.isfinite(np.asarray(x)))) for x in jax.tree.leaves(tree))


def _any_nonzero(tree) -> bool:
    return any(bool(np.any(np.asarray(x) != 0)) for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", samplers.TRAINABLE)
def test_shapes_dtypes_and_finite_gradients_at_init(name):
    sampler, fn = _loss_and_grads(name)
    target, mean, scale = _blr_inputs()
    params = sampler.init(jax.random.key(0), target.dim, 0)
    (loss, out), (g_params, g_mean, g_scale) = fn(params, jax.random.key(1), mean, scale)
    assert out.z.shape == (NUM_PARTICLES, target.dim) and out.z.dtype == jnp.float32
    assert out.log_w.shape == (NUM_PARTICLES,) and out.log_w.dtype == jnp.float32
    assert _all_finite((loss, out.z, out.log_w, g_params, g_mean, g_scale))
    # q0 is trained through the sampler: its gradient must reach the mean and the scale.
    assert np.all(np.asarray(g_mean) != 0) and np.all(np.asarray(g_scale) != 0)
    # Every learned piece gets a signal at init (the zero last layer of the network included).
    for field, grad in g_params.items():
        if field == "cond":
            continue
        assert _any_nonzero(grad), (name, field)
    # Every option group a sampler lists has its parameters, and no other group's.
    cfg = sampler.config
    expected = {"a"} if name != "gaussian" else set()
    expected |= {"b"} if "learn_schedule" in cfg else set()
    expected |= {"net"} if "hidden" in cfg else set()
    expected |= {"damping", "mass"} if "damping_init" in cfg else set()
    assert expected <= set(g_params) - {"cond"}, (name, set(g_params))
    for group, fields in (("hidden", {"net"}), ("damping_init", {"damping", "mass"}),
                          ("learn_schedule", {"b"})):
        if group not in cfg:
            assert not fields & set(g_params), (name, group)


def _with_and_without(name, **option):
    """((loss, out), grads) of the same params and key without and with a sampler option."""
    sampler, plain = _loss_and_grads(name)
    _, changed = _loss_and_grads(name, **option)
    target, mean, scale = _blr_inputs()
    params = common.perturb(sampler.init(jax.random.key(0), target.dim, 0), jax.random.key(5))
    return (plain(params, jax.random.key(1), mean, scale),
            changed(params, jax.random.key(1), mean, scale))


@pytest.mark.parametrize("name", ["ula", "ldvi"])
def test_remat_gives_same_values_and_gradients(name):
    ((_, o1), g1), ((_, o2), g2) = _with_and_without(name, remat=True)
    np.testing.assert_allclose(o2.log_w, o1.log_w, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(o2.z, o1.z, rtol=1e-6, atol=1e-6)
    for a, b in zip(jax.tree.leaves(g2), jax.tree.leaves(g1), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", samplers.DIFFUSIONS)
def test_stop_grad_score_keeps_forward_values(name):
    ((_, o1), g1), ((_, o2), g2) = _with_and_without(name, stop_grad_score=True)
    np.testing.assert_allclose(o2.log_w, o1.log_w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(o2.z, o1.z, rtol=1e-6, atol=1e-6)
    assert _all_finite(g2)
    # It is a different (biased, cheaper) gradient, not a no-op.
    assert not np.allclose(g2[0]["a"], g1[0]["a"])


NETWORKED = [n for n in samplers.DIFFUSIONS if "hidden" in samplers.default_config(n)]


@pytest.mark.parametrize("name", NETWORKED)
def test_vmap_over_tasks_equals_loop(name):
    """Tasks differ in data (the target), q0 and embedding; the params are shared. Every
    sampler with a network sees all per-task inputs: the target, q0, an embedding-conditioned
    schedule and control (and LDVI momentum and mass)."""
    num_tasks, dim_e = 3, 2 * tg.DIM
    sampler = common.make(name, schedule_from_embedding=True)
    tasks = [tg.bayesian_linear_regression(seed=s) for s in range(num_tasks)]
    data = tg.stack(tasks)
    mean = jnp.stack([jnp.asarray(t.q0_mean) for t in tasks])
    scale = jnp.stack([jnp.asarray(t.q0_scale) for t in tasks])
    emb = jnp.concatenate([mean, jnp.log(scale)], axis=-1)
    keys = jax.random.split(jax.random.key(7), num_tasks)
    params = common.perturb(sampler.init(jax.random.key(0), tg.DIM, dim_e), jax.random.key(1))

    def one_task(key, data_t, mean_t, scale_t, e_t):
        log_target = functools.partial(tg.log_prob, data_t)
        out = sampler.run(params, key, log_target, mean_t, scale_t, e_t, NUM_PARTICLES)
        return out.z, out.log_w

    z_v, lw_v = jax.jit(jax.vmap(one_task))(keys, data, mean, scale, emb)
    single = jax.jit(one_task)
    for t in range(num_tasks):
        data_t = jax.tree.map(lambda x, t=t: x[t], data)
        z_t, lw_t = single(keys[t], data_t, mean[t], scale[t], emb[t])
        np.testing.assert_allclose(z_v[t], z_t, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(lw_v[t], lw_t, rtol=1e-5, atol=1e-4)
    # Different tasks really are different problems.
    assert not np.allclose(lw_v[0], lw_v[1])


def test_unknown_sampler_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        samplers.get("hmc")
    for name in samplers.NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="ldvi"):
        samplers.default_config("nope")


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="num_step"):
        samplers.get("ula", num_step=4)
    with pytest.raises(ValueError, match="hidden"):
        samplers.get("gaussian", hidden=(8,))  # K = 0 has no network
    with pytest.raises(ValueError, match="damping_init"):
        samplers.get("ula", damping_init=0.3)  # overdamped: no momentum options


def test_default_configs_list_only_options_the_sampler_uses():
    """An option that changes nothing is a trap: ULA has no network or momentum, UHA no
    network; the networked kernels have their network options."""
    for name in samplers.DIFFUSIONS:
        cfg = samplers.default_config(name)
        params = samplers.get(name, hidden=(4,)) if "hidden" in cfg else samplers.get(name)
        keys = set(params.init(jax.random.key(0), 2, 0))
        assert ("hidden" in cfg) == ("net" in keys), name
        assert ("damping_init" in cfg) == ("damping" in keys), name
        assert ("learn_schedule" in cfg) == ("b" in keys), name


@pytest.mark.parametrize("name, field, value", [
    ("ula", "num_steps", 0),
    ("ldvi", "num_steps", -1),
    ("mcd", "step_size_init", -0.1),
    ("cmcd", "step_size_init", 2.0),  # above step_size_max
    ("ula", "step_size_max", -1.0),
    ("uha", "damping_init", 1.0),
    ("ldvi", "damping_init", 0.0),
    ("uha", "mass_init", 0.0),
    ("gaussian", "num_steps", 3),
])
def test_invalid_values_are_rejected_naming_the_field(name, field, value):
    with pytest.raises(ValueError, match=field):
        samplers.get(name, **{field: value})


def test_from_config_and_num_particles_check():
    sampler = samplers.from_config(ml_collections.ConfigDict(dict(name="ldvi", num_steps=4)))
    assert sampler.name == "ldvi" and sampler.num_steps == 4
    target, mean, scale = _blr_inputs()
    params = sampler.init(jax.random.key(0), target.dim, 0)
    with pytest.raises(ValueError, match="num_particles"):
        sampler.run(params, jax.random.key(1), target.log_prob, mean, scale, common.EMPTY, 0)
