"""All measurements in one process, with the machine they ran on."""

import datetime
import os
import platform
import time
from collections.abc import Callable

import jax
import jaxlib

from amvi_jax import workdir
from experiments.measure import (
    evaluation,
    goals,
    sampler_overhead,
    task_scaling,
    timing,
    training_step,
)


def loadavg() -> str:
    """The 1/5/15-minute load averages as "a/b/c" (n/a where the OS has none)."""
    try:
        return "/".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def machine() -> dict:
    """Devices, CPUs, processor, versions and the load average now."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    return dict(devices=str(jax.devices()), cpu_count=os.cpu_count(), cpu_affinity=affinity,
                processor=platform.processor() or platform.machine(),
                python=platform.python_version(), jax=jax.__version__,
                jaxlib=jaxlib.__version__, load=loadavg())


def run(settings: timing.Settings, log: Callable[[str], None] = lambda _: None) -> dict:
    """Every section in this process -> results: settings, machine, date, num_points (of a
    meta-training task), overhead, steps, evaluation, task_scaling (the rows of each module's
    `measure`), goals (`goals.check`), wall_s and load_end."""
    results = dict(settings=settings, machine=machine(),
                   date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"))
    start = time.perf_counter()
    dataset = workdir.load_data(timing.make_config(settings))
    results["num_points"] = int(dataset.meta_train.x.shape[1])
    log("1/4 sampler overhead")
    results["overhead"] = sampler_overhead.measure(settings, dataset)
    log("2/4 training step (compiles one step per K and remat)")
    results["steps"] = training_step.measure(settings, dataset)
    log("3/4 evaluation")
    results["evaluation"] = evaluation.measure(settings, dataset)
    log("4/4 training step against the number of tasks")
    results["task_scaling"] = task_scaling.measure(settings)
    results["goals"] = goals.check(results["overhead"], results["steps"])
    results["wall_s"] = time.perf_counter() - start
    results["load_end"] = loadavg()
    return results
