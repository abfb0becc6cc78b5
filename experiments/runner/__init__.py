"""The benchmark runner: methods x benchmarks x seeds -> one table (docs/RESULTS.md).

    results = runner.run(out_dir, ["np", "ldvi"], ["sinusoid1d"], [0, 1, 2], preset)
    results = runner.collect(out_dir, preset)      # table of every finished cell, trains nothing

`cells` (the grid and each cell's config), `report` (records, aggregation, tables) and
`figures` are separate modules; presets are `configs/presets.py`. Every metric of a cell,
its AIS reference included (`amvi_jax.gap`), is computed when the cell finishes (`cells`); the
report only reads them.
"""

import json
import os

from experiments.runner import cells, figures, report


def run(out_dir: str, methods, benchmarks, seeds, preset, sweep_methods=("ldvi",),
        sweep_seeds=None, model_like: str = "", overrides: dict | None = None) -> dict:
    """The whole grid plus the K sweep (on `sweep_seeds`, default the first seed); writes
    results.json, results.md and figures. `model_like`, `overrides`: see
    `cells.method_config`. Bad names and overrides fail before any training."""
    for m in (*methods, *sweep_methods, *([model_like] if model_like else [])):
        cells.base_config(m)
    for key in overrides or {}:
        if not any(cells.has_field(cells.method_config(m, benchmarks[0], 0, preset), key)
                   for m in (*methods, *sweep_methods)):
            raise ValueError(f"override {key!r}: no such field in the configs of "
                             f"{', '.join((*methods, *sweep_methods))}")
    for m in sweep_methods:
        if not cells.is_diffusion(cells.base_config(m)):
            diffusions = [d for d in cells.available_methods()
                          if cells.is_diffusion(cells.base_config(d))]
            raise ValueError(f"sweep method {m!r} has no K; valid: {', '.join(diffusions)}")
    for m in (*methods, *sweep_methods):
        if cells.is_diffusion(cells.base_config(m)):
            cells.warm_start_method(m)
    if preset.get("num_tasks"):
        benchmarks = [cells.with_num_tasks(b, t) for b in benchmarks for t in preset.num_tasks]
    os.makedirs(out_dir, exist_ok=True)
    records = []
    for bench in benchmarks:
        slug = cells.benchmark_slug(bench)
        for seed in seeds:
            for method in methods:
                cells.train_cell(out_dir, bench, method, seed, preset, model_like=model_like,
                                 overrides=overrides)
                records.append(report.record(out_dir, slug, method, seed))
            sweep_now = seed == seeds[0] if sweep_seeds is None else seed in sweep_seeds
            for method in (sweep_methods if sweep_now else ()):
                for k in preset.k_sweep:
                    if k == preset.num_steps and method in methods:
                        continue  # the main cell already is this K
                    cells.train_cell(out_dir, bench, method, seed, preset, num_steps=k,
                                     model_like=model_like, overrides=overrides)
                    records.append(report.record(out_dir, slug, cells.cell_name(method, k),
                                                 seed))
    return write(out_dir, records, preset, model_like)


def collect(out_dir: str, preset, model_like: str = "") -> dict:
    """The table of every finished cell under `out_dir`, training nothing (cells of any
    methods, benchmarks and seeds, e.g. from several runs of the runner); writes the same
    results.json, results.md and figures as `run`. References missing from cells of older runs
    are computed first (not for a diffusion's warm-start cells, which `run` does not report)."""
    records = []
    for bench, name, seed in report.finished_cells(out_dir):
        if not name.endswith(cells.WARM):
            cells.cell_reference(os.path.join(out_dir, bench, name, f"seed{seed}"), preset, seed)
        records.append(report.record(out_dir, bench, name, seed))
    return write(out_dir, records, preset, model_like)


def write(out_dir: str, records: list[dict], preset, model_like: str = "") -> dict:
    """results.json, results.md and figures of `records` -> the results dict."""
    rows = report.aggregate(records)
    t_rows = report.t_sweep_rows(records)
    order = report.method_order(records)
    seeds = sorted({r["seed"] for r in records})
    results = dict(preset=preset.name, preset_config=preset.to_dict(),
                   methods=sorted({r["method"] for r in records}, key=order),
                   benchmarks=sorted({r["benchmark"] for r in records}), seeds=seeds,
                   model_like=model_like, rows=rows, t_sweep=t_rows, records=records)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    paths = (figures.lmlhd_vs_context(rows, out_dir) + figures.elbo_gap_vs_k(records, out_dir)
             + figures.posterior_samples(records, out_dir, preset)
             + figures.validation_vs_time(records, out_dir)
             + figures.lmlhd_vs_num_tasks(t_rows, out_dir)
             + figures.completions(records, out_dir))
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        model = f", every method on the model of `{model_like}`" if model_like else ""
        f.write(f"# Benchmark results (preset `{preset.name}`, seeds {seeds}{model})\n\n")
        f.write(report.markdown_table(rows))
        for bench in sorted({r["benchmark"] for r in rows}):
            f.write(f"\n## {bench}: lmlhd_snis per context size and the distance to the "
                    "Bayes limit\n\n" + report.context_table(rows, bench))
            images = report.image_table(records, bench)
            if images:
                f.write("\nImage completion (ctx_ll, tar_ll: the NP literature's per-pixel "
                        "protocol; lmlhd per pixel and MSE: medians over test images):\n\n"
                        + images)
            split = report.split_table(rows, bench)
            if split:
                f.write("\nWhere the distance goes (reference tasks; medians of per-task "
                        "differences, so the parts add up approximately):\n\n" + split)
        sweep = report.k_sweep_table(records)
        if sweep:
            f.write("\n## ELBO gap against K\n\n" + sweep)
        if t_rows:
            f.write("\n## Against the number of meta-training tasks T\n\n"
                    + report.t_sweep_table(t_rows))
        f.write("\n" + "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                 for p in paths) + "\n")
    return results
