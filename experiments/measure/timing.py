"""What every measurement shares: its settings, configs, compiling and an interleaved timer.

Every timing is the median of `Settings.repeats` runs after a warm-up run, with
`block_until_ready`; the variants of one section are timed interleaved (round-robin), so a
noisy shared machine slows them alike.
"""

import dataclasses
import time
from collections.abc import Callable

import jax
import numpy as np

from amvi_jax import samplers
from configs import default


@dataclasses.dataclass(frozen=True)
class Settings:
    """Shapes of every measurement (documented in the report)."""

    # Sampler overhead: tasks x context points x particles, K steps.
    overhead_samplers: tuple[str, ...] = samplers.DIFFUSIONS
    overhead_steps: int = 64
    overhead_tasks: int = 8
    overhead_points: int = 16
    overhead_particles: int = 128
    # Training step of configs/ldvi.py (batch from its train section).
    train_sampler: str = "ldvi"
    train_steps: tuple[int, ...] = (8, 32, 128)        # timed (subset of memory_steps)
    memory_steps: tuple[int, ...] = (8, 32, 128, 256)  # compiled: memory and compile time
    # Evaluation: chunks of `eval_chunk` test tasks (config.eval.task_chunk), contexts of the
    # first `eval_context` points (the largest evaluated context size).
    eval_sampler: str = "ldvi"
    eval_steps: int = 8
    eval_particles: int = 1024
    eval_chunk: int = 16
    eval_context: int = 16
    # Training step of np and GMM-NP against the number of meta-training tasks T.
    scaling_tasks: tuple[int, ...] = (64, 1024, 16384)
    # None keeps the configs' widths (64, 64); QUICK shrinks every network.
    hidden: tuple[int, ...] | None = None
    # Tasks per training step; None keeps the config's train.batch_size (ACCEL: 256).
    train_batch_size: int | None = None
    repeats: int = 7
    data_dir: str = ""  # empty: the config's default data directory
    # XLA options of every compile the measurements make (QUICK: QUICK_COMPILER_OPTIONS).
    compiler_options: tuple[tuple[str, object], ...] = ()


# Measured on the LDVI K = 8 training step: ~5x faster compiles (17.7 -> 3.7 s), ~3x slower
# code (65 -> 200 ms per step), memory_analysis within 1 KiB. For the smoke run only.
QUICK_COMPILER_OPTIONS = (("xla_backend_optimization_level", 0),
                          ("xla_cpu_use_fusion_emitters", False))
FULL = Settings()
# Accelerator-sized shapes (`make bench-accel`): 32x the tasks of every batch.
ACCEL = Settings(overhead_tasks=256, overhead_particles=1024, eval_chunk=256,
                 train_batch_size=256, repeats=5)
QUICK = Settings(overhead_samplers=("ula", "ldvi"), overhead_steps=4, overhead_tasks=2,
                 overhead_points=4, overhead_particles=8, train_steps=(4,), memory_steps=(4,),
                 eval_steps=2, eval_particles=16, eval_chunk=2, eval_context=4, hidden=(16,),
                 scaling_tasks=(8, 32), repeats=2, compiler_options=QUICK_COMPILER_OPTIONS)


def make_config(settings: Settings, sampler: str = "gaussian", num_steps: int = 0,
                remat: bool = False):
    """configs/default.py (Gaussian) or `with_diffusion(default, sampler, num_steps)`."""
    config = default.get_config()
    if sampler != "gaussian":
        config = default.with_diffusion(config, sampler, num_steps)
        config.sampler.remat = remat
        if settings.hidden is not None and "hidden" in config.sampler:
            config.sampler.hidden = settings.hidden
    if settings.hidden is not None:
        config.model.encoder_hidden = settings.hidden
        config.model.decoder_hidden = settings.hidden
    if settings.train_batch_size is not None:
        config.train.batch_size = settings.train_batch_size
    config.data.data_dir = settings.data_dir
    return config


def compile_jitted(settings: Settings, jitted, *args):
    """jitted.lower(*args).compile() with the settings' XLA compiler options."""
    lowered = jitted.lower(*args)
    if settings.compiler_options:
        return lowered.compile(compiler_options=dict(settings.compiler_options))
    return lowered.compile()


def compiled_call(settings: Settings, fn: Callable, *args) -> Callable[[], object]:
    """A no-argument call of `fn(*args)`, jitted and compiled now (for `interleaved_seconds`)."""
    compiled = compile_jitted(settings, jax.jit(fn), *args)
    return lambda: compiled(*args)


def call_once(settings: Settings, fn: Callable, *args):
    """fn(*args) as one compilation (eager JAX would compile every primitive on its own)."""
    return compile_jitted(settings, jax.jit(fn), *args)(*args)


class Carry:
    """A no-argument call of `fn(state) -> (state, out)` that feeds each new state into the
    next call (a training step donates its state), for `interleaved_seconds`."""

    def __init__(self, fn, state):
        self.fn, self.state = fn, state

    def __call__(self):
        self.state, out = self.fn(self.state)
        return out


def interleaved_seconds(fns: dict, repeats: int, bursts: dict | None = None) -> dict:
    """Median wall seconds of each no-argument fn: one warm-up call each, then `repeats`
    round-robin rounds.

    `bursts[name]` calls (each timed) per round for short functions: their median then rests
    on more samples and less on the scheduler's whims right after a long neighbour.
    """
    bursts = bursts or {}
    for fn in fns.values():
        jax.block_until_ready(fn())
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(bursts.get(name, 1)):
                start = time.perf_counter()
                jax.block_until_ready(fn())
                times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}
