"""Time to quality, the library of `experiments/time_to_quality.py`: variants of configs/np.py
on one fixed data set, each trained under a wall-clock budget; the first time its validation
reaches a target; the report and figure."""

import json
import os

import numpy as np

from amvi_jax import experiment
from amvi_jax import workdir as workdir_lib
from configs import np as np_config

# Each variant: config fields -> values, on top of configs/np.py.
VARIANTS = {
    # The shipped Gaussian stage as of issue 12: 8 tasks x 4 context subsets x 16 particles,
    # Adam 1e-3.
    "before": {},
    # Four times the tasks per step and a three times larger rate. On 2 cores a step then
    # costs four times as much (measured: 39 against 162 steps/s), so it loses there.
    "after": {"train.batch_size": 32, "train.learning_rate": 3e-3},
    # Cheaper steps instead: a quarter of the (task, context subset) pairs per step.
    "small": {"train.batch_size": 4, "train.num_subsets": 2, "train.learning_rate": 2e-3},
    # Its two halves, to see which one matters.
    "batch32": {"train.batch_size": 32},
    "lr3e-3": {"train.learning_rate": 3e-3},
    # Cheaper steps and a larger rate together (issue 21), and fewer particles per subset:
    # the IW bound's cost is linear in them.
    "small_lr3e-3": {"train.batch_size": 4, "train.num_subsets": 2,
                     "train.learning_rate": 3e-3},
    "p4": {"train.num_particles": 4, "train.learning_rate": 2e-3},
    "small_p8_lr3e-3": {"train.batch_size": 4, "train.num_subsets": 2, "train.num_particles": 8,
                        "train.learning_rate": 3e-3},
    # Accelerator-sized batches (make bench-accel).
    "accel": {"train.batch_size": 256, "train.learning_rate": 3e-3},
}
DATA = {"data.benchmark": "linesine1d", "data.num_tasks": 1024, "data.num_points": 16,
        "data.noise_std": 0.1, "data.num_validation_tasks": 64, "data.num_test_tasks": 64}


def variant_config(name: str, budget_s: float, validate_every: int, seed: int):
    """configs/np.py on the time-to-quality data with variant `name` applied."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; valid: {', '.join(VARIANTS)}")
    config = np_config.get_config()
    config.update_from_flattened_dict({**DATA, **VARIANTS[name]})
    config.seed = seed
    config.train.update(dict(num_steps=10**7, time_budget_s=budget_s,  # the budget binds
                             validate_every=validate_every, checkpoint_every=10**6,
                             log_every=validate_every))
    config.eval.update(dict(plot_tasks=0))
    return config


def curve(workdir: str) -> tuple[np.ndarray, np.ndarray]:
    """(time_s, validation score) of a run's metrics.jsonl."""
    return workdir_lib.validation_curve(os.path.join(workdir, "metrics.jsonl"))


def time_to(target: float, t: np.ndarray, v: np.ndarray) -> float:
    """First time the validation score reaches `target` (inf if it never does)."""
    hit = np.flatnonzero(v >= target)
    return float(t[hit[0]]) if hit.size else float("inf")


def steps_per_s(workdir: str) -> float:
    rates = [ln["steps_per_sec"] for ln in
             workdir_lib.read_metrics(os.path.join(workdir, "metrics.jsonl"))
             if "steps_per_sec" in ln]
    return float(rates[-1]) if rates else float("nan")


def _ratio(first: float, ttq: float) -> str:
    """How many times faster than the first variant ("–" if either never reached it)."""
    return f"{first / ttq:.2f}x" if np.isfinite(first) and np.isfinite(ttq) else "–"


def report(runs: list[dict], target: float) -> str:
    """Markdown table: one row per variant (median over rounds) and the ratio to the first."""
    names = list(dict.fromkeys(r["variant"] for r in runs))
    first = np.median([r["time_to_target_s"] for r in runs if r["variant"] == names[0]])
    lines = [f"Target: validation lmlhd_snis >= {target}\n",
             "| variant | changes | rounds | steps/s | time to target (s) | speed-up | best "
             "validation | test lmlhd_snis |", "|---|---|---|---|---|---|---|---|"]
    for name in names:
        rs = [r for r in runs if r["variant"] == name]
        ttq = float(np.median([r["time_to_target_s"] for r in rs]))
        changes = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in VARIANTS[name].items())
        lines.append(
            f"| {name} | {changes or 'shipped'} | {len(rs)} | "
            f"{np.median([r['steps_per_s'] for r in rs]):.0f} | "
            + " / ".join(f"{r['time_to_target_s']:.0f}" for r in rs)
            + f" | {_ratio(first, ttq)} | "
            f"{np.median([r['best_validation'] for r in rs]):.2f} | "
            f"{np.median([r['test_lmlhd_snis'] for r in rs]):.2f} |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], target: float, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    colours = {n: f"C{i}" for i, n in enumerate(dict.fromkeys(r["variant"] for r in runs))}
    top = -np.inf
    for r in runs:
        t, v = curve(r["workdir"])
        ax.plot(t, np.maximum.accumulate(v), color=colours[r["variant"]], lw=1.2,
                label=r["variant"] if r["round"] == 0 else None)
        top = max(top, v.max())
    ax.axhline(target, color="k", ls=":", lw=0.8, label="target")
    ax.set_ylim(min(target, top) - 40.0, top + 2.0)  # the first validations are far below
    ax.set(xlabel="wall time (s)", ylabel="best validation lmlhd_snis",
           title="linesine1d, 1024 tasks x 16 points, noise 0.1")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(out_dir: str, variants, *, budget_s: float, validate_every: int, rounds: int,
        seed: int, target: float) -> list[dict]:
    """Trains every variant `rounds` times (alternating) into <out_dir>/<variant>_round<r>,
    writes time_to_quality.{md,json,png} and returns one record per run."""
    for name in variants:  # bad names fail before any training
        variant_config(name, budget_s, validate_every, seed)
    os.makedirs(out_dir, exist_ok=True)
    runs = []
    for round_ in range(rounds):
        for name in variants:
            workdir = os.path.join(out_dir, f"{name}_round{round_}")
            config = variant_config(name, budget_s, validate_every, seed)
            summary = experiment.train_and_evaluate(config, workdir)
            t, v = curve(workdir)
            runs.append(dict(variant=name, round=round_, workdir=workdir,
                             time_to_target_s=time_to(target, t, v),
                             best_validation=float(v.max()), steps_per_s=steps_per_s(workdir),
                             test_lmlhd_snis=summary["average"]["lmlhd_snis_median"]))
    with open(os.path.join(out_dir, "time_to_quality.md"), "w") as f:
        f.write(report(runs, target))
    with open(os.path.join(out_dir, "time_to_quality.json"), "w") as f:
        json.dump(dict(target=target, budget_s=budget_s, runs=runs), f, indent=2)
    plot(runs, target, os.path.join(out_dir, "time_to_quality.png"))
    return runs
