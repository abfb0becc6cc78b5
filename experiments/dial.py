"""Accuracy against test time per task: `python -m experiments.dial --runs=DIR,DIR,...`.

For every finished run directory (any method) and every number T of AIS temperatures in
--temperatures (0: the run's own sampler, or GMM-NP's own per-task fit; T > 0: Metropolis-
corrected AIS from the amortized q0: the run's model with the test-time sampler `ais`) and
every number M of resample-move steps in --moves (M > 0: those particles resampled by weight
and moved M Metropolis-corrected steps at the posterior, `amvi_jax.samplers.refine`),
the protocol's median lmlhd_snis averaged over context sizes on the first --tasks test tasks
(--split=validation: validation tasks, to choose a setting without looking at the test tasks),
and the seconds to turn one new task's context into weighted particles. Writes dial.json and
dial.png (one line per run, with GMM-NP's point on the same axes) to --output_dir.
"""

import json
import os
import time

import jax
import matplotlib
from absl import app, flags, logging

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amvi_jax import evaluate, experiment, reference  # noqa: E402
from amvi_jax.samplers import refine  # noqa: E402
from experiments.main import DropOrbax  # noqa: E402

_RUNS = flags.DEFINE_list("runs", None, "Finished run directories.", required=True)
_TEMPERATURES = flags.DEFINE_list("temperatures", ["0", "16", "64", "256"],
                                  "AIS temperatures of the dial (0: the run's own sampler).")
_MOVES = flags.DEFINE_list("moves", ["0"],
                           "Resample-move steps after the sampler (0: none; every T is run "
                           "with every M).")
_SPLIT = flags.DEFINE_enum("split", "test", ["test", "validation"],
                           "Tasks to evaluate: choose a dial setting on validation, report test.")
_TASKS = flags.DEFINE_integer("tasks", 64, "Tasks to evaluate (the first ones of --split).")
_TRANSITION = flags.DEFINE_enum("transition", "mala", list(reference.TRANSITIONS),
                                "Metropolis-corrected kernel of the dial.")
_OUT = flags.DEFINE_string("output_dir", "runs/dial", "Where dial.json and dial.png go.")


def dial_point(run, temperatures: int, num_tasks: int, transition: str,
               moves: int = 0, split: str = "test") -> dict:
    """One evaluation of a restored run at one setting of the dial: T AIS temperatures from
    q0 instead of its sampler (T > 0), then M resample-move steps (M > 0)."""
    ev = run.config.eval
    model = run.model  # GMM-NP has no sampler to swap: only its own fit, T = M = 0
    if temperatures or moves:
        model = model.with_sampler(refine.dialled(model.sampler, temperatures, moves,
                                                  transition, ev.refine_pilots))
    tasks = getattr(run.dataset, split)
    tasks = tasks._replace(x=tasks.x[:num_tasks], y=tasks.y[:num_tasks])
    key = jax.random.fold_in(jax.random.PRNGKey(run.config.seed), 10**6)
    chunk = min(ev.task_chunk, num_tasks)
    width = run.evaluation.context_width
    summary = evaluate.evaluate(model, run.params, key, tasks, ev.context_sizes,
                                ev.num_particles, chunk, context_width=width)
    seconds = evaluate.measure_test_time(model, run.params, key, tasks, max(ev.context_sizes),
                                         ev.num_particles, chunk)
    return dict(temperatures=temperatures, moves=moves,
                lmlhd_snis=summary["average"]["lmlhd_snis_median"],
                elbo=summary["average"]["elbo_median"], ess=summary["average"]["ess_median"],
                per_task_s=seconds["per_task_s"])


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(DropOrbax())
    start = time.perf_counter()
    results = []
    for workdir in _RUNS.value:
        run = experiment.restore(workdir)
        settings = [(int(t), int(m)) for t in _TEMPERATURES.value for m in _MOVES.value]
        if not hasattr(run.model, "with_sampler"):
            settings = [(0, 0)]  # GMM-NP: its own fit is its test-time computation
        points = [dial_point(run, t, _TASKS.value, _TRANSITION.value, m, _SPLIT.value)
                  for t, m in settings]
        results.append(dict(workdir=workdir, method=run.config.name, points=points))
        for p in points:
            logging.info("%s T=%d M=%d: lmlhd_snis %.2f, %.4f s per task", workdir,
                         p["temperatures"], p["moves"], p["lmlhd_snis"], p["per_task_s"])
    os.makedirs(_OUT.value, exist_ok=True)
    with open(os.path.join(_OUT.value, "dial.json"), "w") as f:
        json.dump(dict(tasks=_TASKS.value, split=_SPLIT.value, transition=_TRANSITION.value,
                       runs=results), f, indent=2)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in results:
        xs = [p["per_task_s"] for p in r["points"]]
        ys = [p["lmlhd_snis"] for p in r["points"]]
        ax.plot(xs, ys, "o-" if len(xs) > 1 else "s", label=r["workdir"])
        for p in r["points"]:
            label = f"T{p['temperatures']}" + (f"+M{p['moves']}" if p["moves"] else "")
            ax.annotate(label, (p["per_task_s"], p["lmlhd_snis"]), fontsize=6)
    ax.set(xscale="log", xlabel="seconds per new task (1024 particles)",
           ylabel="median lmlhd_snis (avg over n)", title="accuracy against test time")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(os.path.join(_OUT.value, "dial.png"), dpi=110)
    print(f"wall time {time.perf_counter() - start:.0f} s; results in {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
