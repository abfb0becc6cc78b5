"""The meta-training step against K: throughput, static memory and compile time.

Memory is XLA's static `memory_analysis()` of the compiled step (deterministic on CPU);
compile time is the wall time of `step.lower(...).compile()` (switch the persistent
compilation cache off for real compilations).
"""

import math
import time

import jax
import jax.numpy as jnp

from amvi_jax import data, neural_process
from amvi_jax.methods import amortized_step as step_lib
from amvi_jax.training import state as state_lib
from experiments.measure import timing


def memory_fields(compiled) -> dict:
    """temp, argument, output and alias bytes of a compiled function; total = the first three."""
    stats = compiled.memory_analysis()
    names = ("temp", "argument", "output", "alias")
    if stats is None:
        return {f"{n}_bytes": math.nan for n in names} | {"total_bytes": math.nan}
    out = {f"{n}_bytes": int(getattr(stats, f"{n}_size_in_bytes")) for n in names}
    out["total_bytes"] = out["temp_bytes"] + out["argument_bytes"] + out["output_bytes"]
    return out


def _compile_step(settings: timing.Settings, dataset: data.MetaDataset, sampler: str,
                  num_steps: int, remat: bool) -> tuple[dict, timing.Carry]:
    config = timing.make_config(settings, sampler, num_steps, remat)
    dim_x, dim_y = dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]
    model = neural_process.from_config(config, dim_y)
    optimizer = step_lib.make_optimizer(config)

    def init_state(key):
        params = model.init(key, dim_x, dim_y)
        return state_lib.create(params, optimizer.init(params))

    state = timing.call_once(settings, init_state, jax.random.PRNGKey(0))
    step = step_lib.make_train_step(model, optimizer, config)
    key = jax.random.PRNGKey(1)
    x, y = jnp.asarray(dataset.meta_train.x), jnp.asarray(dataset.meta_train.y)
    start = time.perf_counter()
    compiled = timing.compile_jitted(settings, step, state, key, x, y)
    compile_s = time.perf_counter() - start
    tc = config.train
    chains = tc.batch_size * tc.num_subsets * tc.num_particles
    row = dict(sampler=sampler, num_steps=num_steps, remat=remat, chains=chains,
               compile_s=compile_s, **memory_fields(compiled))
    return row, timing.Carry(lambda s: compiled(s, key, x, y), state)


def measure(settings: timing.Settings, dataset: data.MetaDataset) -> list[dict]:
    """The Gaussian step, then one row per (K, remat) for K in `memory_steps`; the rows with K
    in `train_steps` (and the Gaussian) are also timed: step_ms, steps_per_s, chain_steps_per_s.

    Memory: temp = scratch buffers, argument, output; alias = output bytes that reuse donated
    argument buffers.
    """
    rows, steppers = [], {}
    row, stepper = _compile_step(settings, dataset, "gaussian", 0, False)
    rows.append(row)
    steppers[0] = stepper
    for num_steps in settings.memory_steps:
        for remat in (False, True):
            row, stepper = _compile_step(settings, dataset, settings.train_sampler, num_steps,
                                         remat)
            rows.append(row)
            if num_steps in settings.train_steps:
                steppers[len(rows) - 1] = stepper
            del stepper  # untimed executables (e.g. K = 256 without remat) are dropped now
    seconds = timing.interleaved_seconds(steppers, settings.repeats)
    for index, s in seconds.items():
        row = rows[index]
        row["step_ms"] = 1e3 * s
        row["steps_per_s"] = 1.0 / s
        row["chain_steps_per_s"] = row["chains"] * max(row["num_steps"], 1) / s
    return rows
