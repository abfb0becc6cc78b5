"""Figures of the benchmark table: lmlhd against context size, ELBO gap against K, each
method's posterior samples beside the AIS reference, validation against wall time, and test
lmlhd against the number of meta-training tasks (the T sweep), and image completions side by
side."""

import os

import jax
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amvi_jax import gap  # noqa: E402
from experiments.runner import report  # noqa: E402
from experiments.runner.cells import WARM, ais_config  # noqa: E402


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def lmlhd_vs_context(rows: list[dict], out_dir: str) -> list[str]:
    """Per benchmark: median lmlhd_snis (mean over seeds) against context size, per method,
    under the Bayes limit (dashed black) where the benchmark has one."""
    paths = []
    for bench in sorted({r["benchmark"] for r in rows}):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        first = next(r for r in rows if r["benchmark"] == bench)
        if "lmlhd_oracle_by_context" in first:
            ns = sorted(first["lmlhd_oracle_by_context"], key=int)
            ax.plot([int(n) for n in ns], [first["lmlhd_oracle_by_context"][n][0] for n in ns],
                    "k--", label="Bayes limit")
        for r in (r for r in rows if r["benchmark"] == bench):
            ns = sorted(r["lmlhd_snis_by_context"], key=int)
            mean = [r["lmlhd_snis_by_context"][n][0] for n in ns]
            ax.plot([int(n) for n in ns], mean, "o-", label=r["method"], ms=3)
        ax.set(xlabel="context size n", ylabel="median lmlhd_snis (nats / task)", title=bench)
        ax.legend(fontsize=7)
        paths.append(_save(fig, os.path.join(out_dir, f"lmlhd_vs_context_{bench}.png")))
    return paths


def elbo_gap_vs_k(records: list[dict], out_dir: str) -> list[str]:
    sweep = report.sweep_records(records)
    if not sweep:
        return []
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for bench, method in sorted({(r["benchmark"], r["method"]) for r in sweep}):
        ks = sorted({r["num_steps"] for r in sweep
                     if (r["benchmark"], r["method"]) == (bench, method)})
        gaps = [np.mean([r["reference"]["average"]["elbo_gap"] for r in sweep
                         if (r["benchmark"], r["method"], r["num_steps"]) == (bench, method, k)])
                for k in ks]
        ax.plot(ks, gaps, "o-", label=f"{method} ({bench})")
    ax.set(xscale="log", xlabel="K (diffusion steps)", ylabel="ELBO gap (nats)",
           title="ELBO gap against K")
    ax.set_xticks(sorted({r["num_steps"] for r in sweep}))
    ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7)
    return [_save(fig, os.path.join(out_dir, "elbo_gap_vs_k.png"))]


def posterior_samples(records: list[dict], out_dir: str, preset) -> list[str]:
    """Per benchmark: each method's q samples beside AIS reference samples (first seed).

    Rows are methods, columns test tasks; every panel uses that method's own decoder for its
    reference, so the latent spaces of different rows are not comparable (only the fit is).
    Reference particles are resampled by their AIS weights; z ~ q is shown unweighted.
    """
    num_tasks, n = preset.posterior.tasks, preset.posterior.context_size
    paths = []
    main = [r for r in records if r.get("main", True) and not r["method"].endswith(WARM)]
    order = report.method_order(records)
    for bench in sorted({r["benchmark"] for r in main}):
        seed = min(r["seed"] for r in main if r["benchmark"] == bench)
        cells = sorted((r for r in main if r["benchmark"] == bench and r["seed"] == seed),
                       key=lambda r: order(r["method"]))
        fig, axes = plt.subplots(len(cells), num_tasks, squeeze=False,
                                 figsize=(2.4 * num_tasks, 2.2 * len(cells)))
        for i, rec in enumerate(cells):
            samples = gap.posterior_samples(rec["workdir"], num_tasks, n,
                                            ais_config(preset),
                                            num_particles=preset.reference.num_particles,
                                            seed=seed)
            rng = np.random.default_rng(seed)
            for t in range(num_tasks):
                ax = axes[i, t]
                w = np.exp(samples["log_w_ref"][t] - samples["log_w_ref"][t].max())
                idx = rng.choice(len(w), size=min(400, len(w)), p=w / w.sum())
                ref, q = samples["z_ref"][t][idx], samples["z"][t][:400]
                ax.scatter(ref[:, 0], ref[:, 1], s=3, color="0.55", alpha=0.5, label="AIS")
                ax.scatter(q[:, 0], q[:, 1], s=3, color=f"C{i}", alpha=0.5,
                           label=rec["method"])
                if t == 0:
                    ax.set_ylabel(rec["method"])
                if i == 0:
                    ax.set_title(f"test task {t}, n = {n}", fontsize=8)
                ax.tick_params(labelsize=6)
        axes[0, 0].legend(fontsize=6, markerscale=3)
        fig.suptitle(f"{bench}: z ~ q (colour) beside AIS reference (grey), z_1 vs z_2",
                     fontsize=9)
        paths.append(_save(fig, os.path.join(out_dir, f"posterior_samples_{bench}.png")))
    return paths


def validation_vs_time(records: list[dict], out_dir: str) -> list[str]:
    """Per benchmark: each method's best validation lmlhd_snis so far against its `time_s`
    (first seed; a diffusion's curve is its warm start's until that ended, so warm-start cells
    have no curve of their own). Cells logged before `time_s` existed are left out."""
    paths = []
    main = [r for r in records if r.get("main", True) and not r["method"].endswith(WARM)]
    order = report.method_order(records)
    for bench in sorted({r["benchmark"] for r in main}):
        seed = min(r["seed"] for r in main if r["benchmark"] == bench)
        fig, ax = plt.subplots(figsize=(5, 3.5))
        top = -np.inf
        for rec in sorted((r for r in main if r["benchmark"] == bench and r["seed"] == seed),
                          key=lambda r: order(r["method"])):
            t, v = report.training_curve(rec)
            if t.size:
                ax.step(t, np.maximum.accumulate(v), where="post", label=rec["method"])
                top = max(top, v.max())
        if top == -np.inf:
            plt.close(fig)
            continue
        ax.set(xlabel="training wall time (s)", ylabel="best validation lmlhd_snis",
               title=f"{bench} (seed {seed})")
        ax.set_ylim(top - 40.0, top + 2.0)  # the first validations are far below
        ax.legend(fontsize=7)
        paths.append(_save(fig, os.path.join(out_dir, f"validation_vs_time_{bench}.png")))
    return paths


def lmlhd_vs_num_tasks(rows: list[dict], out_dir: str) -> list[str]:
    """Per benchmark of the T sweep (`report.t_sweep_rows`): test lmlhd_snis at the budget
    against T, mean ± standard error over seeds, per method; values more than 40 nats below the
    best are written at the bottom edge."""
    paths = []
    for bench in sorted({r["benchmark"] for r in rows}):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        top = max(r["lmlhd_snis"][0] for r in rows if r["benchmark"] == bench)
        bottom = top - 40.0  # a collapsed cell would flatten every other curve
        for method in dict.fromkeys(r["method"] for r in rows if r["benchmark"] == bench):
            rs = [r for r in rows if (r["benchmark"], r["method"]) == (bench, method)]
            mean, se = np.array([r["lmlhd_snis"] for r in rs]).T
            num_tasks = [r["num_tasks"] for r in rs]
            line = ax.errorbar(num_tasks, mean, yerr=np.nan_to_num(se), fmt="o-", ms=3,
                               capsize=2, label=method)
            for t, m in zip(num_tasks, mean, strict=True):
                if m < bottom:  # off the axis: its value at the bottom edge
                    ax.annotate(f"{m:.0f}", (t, bottom), xytext=(0, 4),
                                textcoords="offset points", ha="center", fontsize=7,
                                color=line[0].get_color())
        ax.set_ylim(bottom, top + 3.0)
        ax.set_xscale("log", base=2)
        ax.set(xlabel="meta-training tasks T", ylabel="test lmlhd_snis (median, avg over n)",
               title=f"{bench}: {rows[0]['budget_s']:g} s of training per cell")
        ax.legend(fontsize=7)
        paths.append(_save(fig, os.path.join(out_dir, f"lmlhd_vs_num_tasks_{bench}.png")))
    return paths


def completions(records: list[dict], out_dir: str) -> list[str]:
    """Per image benchmark: `completions_<benchmark>.png`, every method's predictive mean and
    posterior samples side by side on the same test images and contexts (first seed)."""
    from amvi_jax import experiment, plotting

    paths = []
    main = [r for r in records if r.get("main", True) and not r["method"].endswith(WARM)
            and isinstance(r["eval"].get("literature"), dict)]
    order = report.method_order(records)
    for bench in sorted({r["benchmark"] for r in main}):
        seed = min(r["seed"] for r in main if r["benchmark"] == bench)
        cells = sorted((r for r in main if r["benchmark"] == bench and r["seed"] == seed),
                       key=lambda r: order(r["method"]))
        runs = [experiment.restore(r["workdir"]) for r in cells]
        dataset, config = runs[0].dataset, runs[0].config
        model = lambda run: run.evaluation.model
        path = os.path.join(out_dir, f"completions_{bench}.png")
        plotting.plot_completions(
            [(r["method"], model(run), run.params) for r, run in zip(cells, runs, strict=True)],
            jax.random.PRNGKey(seed), dataset.test, tuple(config.eval.plot_context_sizes),
            range(min(2, dataset.test.x.shape[0])), path, dataset.image_shape)
        paths.append(path)
    return paths
