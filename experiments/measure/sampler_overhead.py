"""Sampler overhead: a jitted K-step `sampler.run` against K batched score evaluations.

The floor of a Langevin sampler is its scores (docs/DESIGN.md section 3: the samplers); the
ratio says what the rest of a step (noise, networks, weights) costs on top. Forward only, as at
test time.
"""

import jax
import jax.numpy as jnp
import numpy as np

from amvi_jax import data, neural_process, samplers
from experiments.measure import timing

# Calls of the (short) lone score evaluation per timing round (see `timing.interleaved_seconds`).
SCORE_BURSTS = 5


def measure(settings: timing.Settings, dataset: data.MetaDataset) -> list[dict]:
    """One row per sampler in `settings.overhead_samplers`: K-step run over T tasks x P particles.

    `ratio` = run / (K x score), the score floor of a Langevin sampler (it needs K + 1 scores,
    so an ideal ULA is at (K + 1) / K). `ratio_loop` divides instead by K scores inside one
    jitted loop, which removes the per-call dispatch of the single evaluation.
    """
    num_tasks, num_points = settings.overhead_tasks, settings.overhead_points
    num_particles, num_steps = settings.overhead_particles, settings.overhead_steps
    x = jnp.asarray(dataset.meta_train.x[:num_tasks, :num_points])
    y = jnp.asarray(dataset.meta_train.y[:num_tasks, :num_points])
    mask = jnp.asarray(np.ones(x.shape[:2], np.float32))
    model = neural_process.from_config(timing.make_config(settings), y.shape[-1])

    def setup(key):
        key_init, key_z = jax.random.split(key)
        params = model.init(key_init, x.shape[-1], y.shape[-1])
        q0 = jax.vmap(model.encode, (None, 0, 0, 0))(params, x, y, mask)
        z = q0.mean[:, None] + q0.scale[:, None] * jax.random.normal(
            key_z, (num_tasks, num_particles, model.dim_z))
        return params, q0, z

    params, q0, z = timing.call_once(settings, setup, jax.random.PRNGKey(0))

    def score(p, x, y, mask, z):  # z [T, P, d_z] -> grad log gamma [T, P, d_z]
        per_task = lambda xt, yt, mt, zt: jax.vmap(jax.grad(model.log_target(p, xt, yt, mt)))(zt)
        return jax.vmap(per_task)(x, y, mask, z)

    def looped(p, x, y, mask, z):
        return jax.lax.fori_loop(0, num_steps, lambda _, zz: zz + 1e-3 * score(p, x, y, mask, zz),
                                 z)

    fns = {"score": timing.compiled_call(settings, score, params, x, y, mask, z),
           "loop": timing.compiled_call(settings, looped, params, x, y, mask, z)}
    for name in settings.overhead_samplers:
        sampler = samplers.get(name, num_steps=num_steps)
        sampler_params = timing.call_once(
            settings, lambda k, s=sampler: s.init(k, model.dim_z, model.dim_embedding),
            jax.random.PRNGKey(2))

        def run(sp, p, key, x, y, mask, q0, sampler=sampler):
            def one(k, xt, yt, mt, mean, scale, emb):
                out = sampler.run(sp, k, model.log_target(p, xt, yt, mt), mean, scale, emb,
                                  num_particles)
                return out.z, out.log_w

            keys = jax.random.split(key, num_tasks)
            return jax.vmap(one)(keys, x, y, mask, q0.mean, q0.scale, q0.embedding)

        fns[name] = timing.compiled_call(settings, run, sampler_params, params,
                                         jax.random.PRNGKey(3), x, y, mask, q0)
    seconds = timing.interleaved_seconds(fns, settings.repeats, bursts={"score": SCORE_BURSTS})
    return [dict(sampler=name, num_steps=num_steps, run_ms=1e3 * seconds[name],
                 score_ms=1e3 * seconds["score"], loop_ms=1e3 * seconds["loop"],
                 ratio=seconds[name] / (num_steps * seconds["score"]),
                 ratio_loop=seconds[name] / seconds["loop"], score_bursts=SCORE_BURSTS)
            for name in settings.overhead_samplers]
