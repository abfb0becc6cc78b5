"""Helpers shared by the sampler tests: one-jit training on a fixed target, weight statistics.

Every helper compiles once per call site; the tests are dominated by XLA compile time on a
2-core machine, so training and evaluation live in ONE jitted function.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from amvi_jax import samplers
from tests.samplers import targets as tg

EMPTY = jnp.zeros((0,))


def make(name: str, **overrides) -> samplers.Sampler:
    """A sampler with a one-layer network: compiles faster, and capacity is not under test."""
    if "hidden" in samplers.default_config(name):
        overrides = dict(hidden=(32,), **overrides)
    return samplers.get(name, **overrides)


@functools.cache
def gaussian_run(name: str, num_particles: int = 256):
    """(sampler, jit of (params, key, embedding, a, c) -> (z, log_w)) on the 5-D Gaussian target
    seen through z' = a z + c (a > 0 diagonal; a = 1, c = 0 is the plain target).

    Cached so the reduction and whitening tests share one compile per sampler.
    """
    sampler = make(name)
    target = tg.correlated_gaussian()
    mean, scale = jnp.asarray(target.q0_mean), jnp.asarray(target.q0_scale)

    @jax.jit
    def run(params, key, embedding, a, c):
        def log_target(z):
            return target.log_prob((z - c) / a) - jnp.sum(jnp.log(a))

        out = sampler.run(params, key, log_target, a * mean + c, a * scale, embedding,
                          num_particles)
        return out.z, out.log_w

    return sampler, run


def fit_and_evaluate(sampler, targets, *, steps: int, num_particles: int = 64,
                     eval_batches: int = 64, lr: float = 1e-2, seed: int = 0):
    """Adam on -ELBO for `steps` steps, separately for each target, with q0 fixed at the
    target's (poor) q0.

    -> (log_w at init [T, E], log_w after training [T, E], losses [T, steps]) with
    E = eval_batches * num_particles weights drawn with the same keys before and after training,
    so that their difference is due to training alone.

    Compile time dominates these tests, so everything is ONE graph: the targets are one family
    vmapped over its parameters, and the evaluations are extra iterations of the training scan
    with the update masked out.
    """
    family = tg.stack(targets)
    means = jnp.stack([jnp.asarray(t.q0_mean) for t in targets])
    scales = jnp.stack([jnp.asarray(t.q0_scale) for t in targets])
    # Clipping as in real training: when a learned step size touches the stability limit of a
    # stiff target, pathwise gradients spike and plain Adam can undo earlier progress.
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(lr))

    def fit_one(target_params, mean, scale, key):
        log_target = functools.partial(tg.log_prob, target_params)

        def loss(params, k):
            log_w = sampler.run(params, k, log_target, mean, scale, EMPTY, num_particles).log_w
            return -jnp.mean(log_w), log_w

        def adam_step(carry, inputs):
            params, state = carry
            k, do_update = inputs
            (value, log_w), grads = jax.value_and_grad(loss, has_aux=True)(params, k)
            updates, new_state = opt.update(grads, state, params)
            keep = lambda new, old: jnp.where(do_update, new, old)
            params = jax.tree.map(keep, optax.apply_updates(params, updates), params)
            return (params, jax.tree.map(keep, new_state, state)), (value, log_w)

        key_init, key_train, key_eval = jax.random.split(key, 3)
        eval_keys = jax.random.split(key_eval, eval_batches)
        keys = jnp.concatenate([eval_keys, jax.random.split(key_train, steps), eval_keys])
        step = jnp.arange(keys.shape[0])
        do_update = (step >= eval_batches) & (step < eval_batches + steps)
        params = sampler.init(key_init, tg.DIM, 0)
        _, (losses, log_w) = jax.lax.scan(adam_step, (params, opt.init(params)), (keys, do_update))
        n = eval_batches
        return log_w[:n].reshape(-1), log_w[-n:].reshape(-1), losses[n:-n]

    keys = jax.random.split(jax.random.key(seed), len(targets))
    return jax.jit(jax.vmap(fit_one))(family, means, scales, keys)


def weight_stats(log_w) -> dict:
    """ELBO and log Z-hat with their Monte Carlo standard errors, in float64.

    se(log Z-hat) is the delta-method error of the mean weight: std(w) / (sqrt(P) mean(w)).
    """
    lw = np.asarray(log_w, np.float64)
    p = lw.size
    w = np.exp(lw - lw.max())
    return dict(
        elbo=lw.mean(),
        elbo_se=lw.std(ddof=1) / np.sqrt(p),
        log_z_hat=np.log(w.mean()) + lw.max(),
        log_z_hat_se=w.std(ddof=1) / np.sqrt(p) / w.mean(),
    )


def perturb(params, key, scale: float = 0.3, net_scale: float = 0.05):
    """Adds Gaussian noise to every leaf: non-default schedules and a non-zero network.

    The network gets less: its output is multiplied by up to 1 / step size inside log w, and
    weights of thousands of nats would hide an O(1) error behind a relative tolerance.
    """
    leaves, tree = jax.tree_util.tree_flatten_with_path(params)
    if not leaves:
        return params
    keys = jax.random.split(key, len(leaves))
    out = []
    for (path, x), k in zip(leaves, keys, strict=True):
        sd = net_scale if jax.tree_util.keystr(path[:1]) == "['net']" else scale
        out.append(x + sd * jax.random.normal(k, x.shape, x.dtype))
    return jax.tree.unflatten(tree, out)
