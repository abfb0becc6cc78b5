"""Evaluation throughput: contexts -> weighted particles, as `evaluate.measure_test_time`."""

import jax
import jax.numpy as jnp

from amvi_jax import data, evaluate, neural_process
from experiments.measure import timing


def measure(settings: timing.Settings, dataset: data.MetaDataset) -> list[dict]:
    """Test-time cost the way `evaluate.measure_test_time` measures it: contexts -> weighted
    particles, jitted and warm, for ONE new task and for a chunk of `eval_chunk` test tasks
    vmapped in one call (as the evaluation runs them); tasks/s = chunk / its median time.
    One row each for the Gaussian and `eval_sampler`, timed interleaved.
    """
    num_points = dataset.test.x.shape[1]
    num_context = evaluate.context_bucket(settings.eval_context, num_points)
    mask = data.first_n_mask(num_context, settings.eval_context)
    chunk = settings.eval_chunk
    x, y = dataset.test.x[:chunk, :num_context], dataset.test.y[:chunk, :num_context]
    dim_x, dim_y = x.shape[-1], y.shape[-1]
    key = jax.random.PRNGKey(1)
    variants = (("gaussian", 0), (settings.eval_sampler, settings.eval_steps))
    fns = {}
    for sampler, num_steps in variants:
        model = neural_process.from_config(timing.make_config(settings, sampler, num_steps),
                                           dim_y)
        params = timing.call_once(settings, lambda k, m=model: m.init(k, dim_x, dim_y),
                                  jax.random.PRNGKey(0))

        def particles(p, k, xi, yi, model=model):
            out = model.sample(p, k, xi, yi, mask, settings.eval_particles)
            return out.z, out.log_w

        def many(p, k, xs, ys, particles=particles):
            keys = jax.random.split(k, xs.shape[0])
            return jax.vmap(particles, (None, 0, 0, 0))(p, keys, xs, ys)

        # Device arrays, sliced on the host: no eager (per-primitive) compiles.
        fns[sampler, "one"] = timing.compiled_call(settings, particles, params, key,
                                                   jnp.asarray(x[0]), jnp.asarray(y[0]))
        fns[sampler, "many"] = timing.compiled_call(settings, many, params, key,
                                                    jnp.asarray(x), jnp.asarray(y))
    seconds = timing.interleaved_seconds(fns, settings.repeats)
    return [dict(sampler=sampler, num_steps=num_steps, particles=settings.eval_particles,
                 context=settings.eval_context, num_context=num_context, chunk=chunk,
                 per_task_ms=1e3 * seconds[sampler, "one"],
                 chunk_ms=1e3 * seconds[sampler, "many"],
                 tasks_per_s=chunk / seconds[sampler, "many"])
            for sampler, num_steps in variants]
