"""Records of finished cells, their aggregation over seeds, and the Markdown tables.

A record is one finished cell: its eval.json, the AIS reference (computed when the cell
finished, `cells.cell_reference`, and read here from the cell's reference.json) and where it
sits in the grid. Rows aggregate records over seeds (mean ± standard
error); the gain over np is paired by seed (same seed = same data and same test tasks).
`lmlhd_ref` and `inference gain` are measured on the reference tasks and context sizes only
(the preset's `reference` section): the predictive log-likelihood under the AIS posterior of
the cell's own decoder, and its excess over the cell's own lmlhd_snis on the same tasks.
`training wall` is the median over seeds of the cell's last `time_s` (a diffusion cell's
includes the Gaussian cell it warm-starts from; cells trained before `time_s` existed show –).

On a generated benchmark every table has the Bayes limit (`amvi_jax.data.oracle`, the
exact posterior predictive of the generating process) as a row of its own and each method's
distance to it ("to the limit" = limit - method, difference of the medians, averaged over n).
On the reference tasks that distance splits into the model part (limit - lmlhd_ref: the
learned prior and decoder under their exact posterior) and the inference part (lmlhd_ref -
lmlhd_snis, the inference gain). A cell evaluated before the limit existed gets it computed
here from its own test tasks.

The T sweep (benchmarks `<name>@T<T>`, directories `<name>_T<T>`) gets its own table: test
lmlhd_snis at the budget against T, and the best validation reached by a quarter, half and all
of the budget, read off each cell's curve (`training_curve`: a diffusion's starts with that of
the Gaussian run it warm-starts from, whose clock it continues).
"""

import functools
import json
import os
import re

import ml_collections
import numpy as np

from amvi_jax import evaluate, gap, samplers
from amvi_jax import workdir as workdir_lib
from amvi_jax.data import oracle
from experiments.runner.cells import WARM

BASE_METHOD = "np"


def record(out_dir: str, benchmark: str, name: str, seed: int) -> dict | None:
    """The record of a finished cell directory (None if it has no eval.json yet); cells
    named `<method>_k<K>` are K-sweep cells (`main` False). Computes nothing but the Bayes
    limit of a cell evaluated before it existed; a cell without its reference.json has no
    `reference` (see `cells.cell_reference`)."""
    method, k = re.fullmatch(r"(.+?)(?:_k(\d+))?", name).groups()
    workdir = os.path.join(out_dir, benchmark, name, f"seed{seed}")
    if not os.path.exists(os.path.join(workdir, "eval.json")):
        return None
    with open(os.path.join(workdir, "eval.json")) as f:
        summary = json.load(f)
    config = workdir_lib.read_config(workdir)
    if "oracle" not in summary:  # evaluated before the Bayes limit was part of eval.json
        summary = evaluate.with_oracle(summary, _oracle(
            json.dumps(config.data.to_dict(), sort_keys=True),
            tuple(int(n) for n in summary["context_sizes"])))
    amortized = config.method == "amortized"
    rec = dict(benchmark=benchmark, method=method, seed=seed,
               kind=config.sampler.name if amortized else config.method,
               num_steps=config.sampler.num_steps if amortized else None,
               eval=summary, workdir=workdir, init_from=config.train.get("init_from", ""),
               time_budget_s=config.train.get("time_budget_s", 0.0),
               train_time_s=workdir_lib.last_time_s(os.path.join(workdir, "metrics.jsonl")))
    ref = gap.cached_reference(workdir)
    if ref is not None:
        rec["reference"] = ref
    if k is not None:
        rec["main"] = False
    return rec


@functools.lru_cache(maxsize=32)
def _oracle(data_json: str, context_sizes: tuple[int, ...]) -> dict:
    """`evaluate.oracle_summary` of the test split a data config describes (once per data)."""
    data_config = ml_collections.ConfigDict(json.loads(data_json))
    why = oracle.reason_missing(data_config.benchmark)
    if why is not None:
        return {"none": why}
    test = workdir_lib.load_data(ml_collections.ConfigDict({"data": data_config})).test
    return evaluate.oracle_summary(data_config.benchmark, data_config.noise_std, test,
                                   context_sizes)


def method_order(records: list[dict]):
    """Sort key of method names: Gaussian NPs (np first), then diffusions in registry order,
    then the other methods (GMM-NP), alphabetically within each group."""
    kinds = {r["method"]: r["kind"] for r in records}

    def key(method):
        kind = kinds.get(method, "")
        if kind == "gaussian":
            return (0, 0, method != BASE_METHOD, method)
        if kind in samplers.NAMES:
            return (1, samplers.NAMES.index(kind), False, method)
        return (2, 0, False, method)

    return key


def mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def _score(r) -> float:
    return r["eval"]["average"]["lmlhd_snis_median"]


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (benchmark, method): mean and standard error over seeds."""
    rows = []
    main = [r for r in records if r.get("main", True)]  # K-sweep cells stay out of the table
    order = method_order(records)
    keys = sorted({(r["benchmark"], r["method"]) for r in main},
                  key=lambda k: (k[0], order(k[1])))
    for bench, method in keys:
        rs = [r for r in main if (r["benchmark"], r["method"]) == (bench, method)]
        row = dict(benchmark=bench, method=method, seeds=len(rs))
        row["lmlhd_snis"] = mean_se([_score(r) for r in rs])
        row["lmlhd_mc"] = mean_se([r["eval"]["average"]["lmlhd_mc_median"] for r in rs])
        row["mse"] = mean_se([r["eval"]["average"]["mse_median"] for r in rs])
        row["lmlhd_snis_by_context"] = {
            n: mean_se([r["eval"]["context_sizes"][n]["lmlhd_snis_median"] for r in rs])
            for n in rs[0]["eval"]["context_sizes"]}
        if all("gap_to_oracle" in r["eval"]["average"] for r in rs):
            row["gap_to_oracle"] = mean_se([r["eval"]["average"]["gap_to_oracle"] for r in rs])
            for key, field in (("lmlhd_oracle", "lmlhd_oracle_median"),
                               ("gap_to_oracle", "gap_to_oracle")):
                row[f"{key}_by_context"] = {
                    n: mean_se([r["eval"]["context_sizes"][n][field] for r in rs])
                    for n in rs[0]["eval"]["context_sizes"]}
            # The same test tasks for every seed and method: the limit of the first record.
            row["lmlhd_oracle"] = rs[0]["eval"]["average"]["lmlhd_oracle_median"]
        else:
            row["no_oracle"] = rs[0]["eval"].get("oracle", "none: not evaluated")
        refs = [r["reference"] for r in rs if "reference" in r]
        if refs:
            row["reference_by_context"] = {
                n: {f: mean_se([x["context_sizes"][n][f] for x in refs])
                    for f in (*gap.ORACLE_FIELDS, "lmlhd_ref", "lmlhd_snis", "inference_gain")
                    if all(f in x["context_sizes"].get(n, {}) for x in refs)}
                for n in refs[0]["context_sizes"]}
            for field in ("elbo_gap", "ess", "lmlhd_ref", "inference_gain", "model_gap"):
                values = [x["average"][field] for x in refs if field in x["average"]]
                if values:
                    row[field] = mean_se(values)
        base = {r["seed"]: r for r in main
                if (r["benchmark"], r["method"]) == (bench, BASE_METHOD)}
        paired = [r for r in rs if r["seed"] in base]
        if method != BASE_METHOD and paired:  # the same seed's np: same tasks, same data
            row["gain_vs_np"] = mean_se([_score(r) - _score(base[r["seed"]]) for r in paired])
            row["gain_seeds"] = len(paired)
        walls = [r["train_time_s"] for r in rs if r.get("train_time_s")]
        if walls:
            row["train_time_s"] = float(np.median(walls))
        times = [r["eval"].get("test_time") for r in rs if r["eval"].get("test_time")]
        if times:
            row["per_task_s"] = float(np.median([t["per_task_s"] for t in times]))
            row["test_split_s"] = float(np.median([t["test_split_s"] for t in times]))
        rows.append(row)
    return rows


def fmt(pair, digits=2) -> str:
    mean, se = pair
    return f"{mean:.{digits}f}" if np.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def _opt(row: dict, key: str, digits: int = 2) -> str:
    return fmt(row[key], digits) if key in row else "–"


def limit_row(rows: list[dict], bench: str) -> tuple[str, str]:
    """(method cell, value cell) of a benchmark's Bayes-limit row: its value, or "–" and why."""
    first = next(r for r in rows if r["benchmark"] == bench)
    if "lmlhd_oracle" in first and "gap_to_oracle" in first:
        return "**Bayes limit**", f"{first['lmlhd_oracle']:.2f}"
    why = first.get("no_oracle", "none").removeprefix("none: ")
    return f"Bayes limit: none ({why})", "–"


def markdown_table(rows: list[dict]) -> str:
    """One row per (benchmark, method) after the benchmark's Bayes-limit row. "model part" and
    "inference gain" split the distance to the limit on the reference tasks."""
    lines = ["| benchmark | method | seeds | lmlhd_snis (median, avg over n) | to the limit | "
             "gain over np (paired) | lmlhd_mc | ELBO gap (nats) | ESS of 1024 | "
             "lmlhd_ref (ref. tasks) | model part (ref. tasks) | inference gain | "
             "test time / task (s) | test split (s) | training wall (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    previous = None
    for r in rows:
        if r["benchmark"] != previous:
            previous = r["benchmark"]
            name, value = limit_row(rows, previous)
            lines.append(f"| {previous} | {name} | – | {value} | {'–' if value == '–' else 0} |"
                         + " – |" * 10)
        gain = (f"{r['gain_vs_np'][0]:+.2f}" if "gain_vs_np" in r else "–")
        if "gain_vs_np" in r and not np.isnan(r["gain_vs_np"][1]):
            gain += f" ± {r['gain_vs_np'][1]:.2f}"
        cells = [r["benchmark"], r["method"], str(r["seeds"]), fmt(r["lmlhd_snis"]),
                 _opt(r, "gap_to_oracle"), gain, fmt(r["lmlhd_mc"]), _opt(r, "elbo_gap"),
                 _opt(r, "ess", 0), _opt(r, "lmlhd_ref"), _opt(r, "model_gap"),
                 _opt(r, "inference_gain"),
                 f"{r['per_task_s']:.4f}" if "per_task_s" in r else "–",
                 f"{r['test_split_s']:.2f}" if "test_split_s" in r else "–",
                 f"{r['train_time_s']:.0f}" if r.get("train_time_s") else "–"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def context_table(rows: list[dict], bench: str) -> str:
    """lmlhd_snis per context size (mean ± se over seeds) of every method of `bench`, under
    the Bayes limit's row, each with its distance to the limit."""
    rs = [r for r in rows if r["benchmark"] == bench]
    sizes = sorted(rs[0]["lmlhd_snis_by_context"], key=int)
    lines = [f"| {bench} | " + " | ".join(f"n = {n}" for n in sizes) + " |",
             "|---|" + "---|" * len(sizes)]
    if "lmlhd_oracle_by_context" in rs[0]:
        lines.append("| **Bayes limit** | " + " | ".join(
            f"{rs[0]['lmlhd_oracle_by_context'][n][0]:.2f}" for n in sizes) + " |")
    else:
        lines.append(f"| {limit_row(rows, bench)[0]} |" + " – |" * len(sizes))
    for r in rs:
        by = r.get("gap_to_oracle_by_context")
        lines.append(f"| {r['method']} | " + " | ".join(
            fmt(r["lmlhd_snis_by_context"][n]) + (f" ({by[n][0]:.2f} below)" if by else "")
            for n in sizes) + " |")
    return "\n".join(lines) + "\n"


def split_table(rows: list[dict], bench: str) -> str:
    """Where the distance to the limit goes, per reference context size (reference tasks):
    to the limit = model part (limit - lmlhd_ref) + inference part (lmlhd_ref - lmlhd_snis),
    medians of per-task differences (so the parts add up approximately)."""
    rs = [r for r in rows if r["benchmark"] == bench and "reference_by_context" in r]
    if not rs or not any("model_gap" in v for r in rs for v in r["reference_by_context"].values()):
        return ""
    lines = ["| method | n | Bayes limit | lmlhd_snis | to the limit | model part | "
             "inference part |", "|---|---|---|---|---|---|---|"]
    for r in rs:
        for n, v in sorted(r["reference_by_context"].items(), key=lambda kv: int(kv[0])):
            if "model_gap" not in v:
                continue
            lines.append(f"| {r['method']} | {n} | {v['lmlhd_oracle'][0]:.2f} | "
                         f"{fmt(v['lmlhd_snis'])} | {fmt(v['gap_to_oracle'])} | "
                         f"{fmt(v['model_gap'])} | {fmt(v['inference_gain'])} |")
    return "\n".join(lines) + "\n"


def image_table(records: list[dict], bench: str) -> str:
    """Image completion per method (mean ± se over seeds): the NP literature's per-pixel
    context and target log-likelihoods, lmlhd_snis per pixel and MSE at each context size,
    the spread of the posterior's completions at the smallest non-empty context, and cost.
    Empty when the benchmark's evaluations have no `literature` entry (not images)."""
    main = [r for r in records if r["benchmark"] == bench and r.get("main", True)
            and isinstance(r["eval"].get("literature"), dict)]
    if not main:
        return ""
    sizes = sorted(main[0]["eval"]["context_sizes"], key=int)
    few = next((n for n in sizes if int(n) > 0), sizes[0])
    lines = ["| method | seeds | ctx_ll | tar_ll | " + " | ".join(
        f"lmlhd/pixel n={n}" for n in sizes) + " | " + " | ".join(
        f"MSE n={n}" for n in sizes) + f" | spread n={few} | training (s) | test s / image |",
        "|---" * (6 + 2 * len(sizes)) + "|"]
    order = method_order(records)
    for method in sorted({r["method"] for r in main}, key=order):
        rs = [r for r in main if r["method"] == method]
        ev = [r["eval"] for r in rs]

        def cell(values, digits=3):
            return fmt(mean_se(values), digits)

        lines.append("| " + " | ".join(
            [method, str(len(rs)), cell([e["literature"]["ctx_ll"] for e in ev]),
             cell([e["literature"]["tar_ll"] for e in ev])]
            + [cell([e["context_sizes"][n]["lmlhd_snis_median_per_point"] for e in ev])
               for n in sizes]
            + [cell([e["context_sizes"][n]["mse_median"] for e in ev], 4) for n in sizes]
            + [cell([e["context_sizes"][few].get("spread_median", np.nan) for e in ev], 4),
               f"{np.median([r['train_time_s'] or np.nan for r in rs]):.0f}",
               f"{np.median([e['test_time']['per_task_s'] for e in ev]):.4f}"]) + " |")
    return "\n".join(lines) + "\n"


def sweep_records(records: list[dict]) -> list[dict]:
    """The K sweep: cells of the (benchmark, method, seed)s that have sweep cells, plus their
    main cell (the preset's K), so every K is averaged over the same seeds."""
    swept = {(r["benchmark"], r["method"], r["seed"]) for r in records
             if not r.get("main", True) and "reference" in r}
    return [r for r in records
            if (r["benchmark"], r["method"], r["seed"]) in swept and "reference" in r]


def k_sweep_table(records: list[dict]) -> str:
    sweep = sweep_records(records)
    if not sweep:
        return ""
    lines = ["| benchmark | method | K | seeds | ELBO gap (nats) | ESS of 1024 | lmlhd_snis |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted({(r["benchmark"], r["method"], r["num_steps"]) for r in sweep}):
        rs = [r for r in sweep if (r["benchmark"], r["method"], r["num_steps"]) == key]
        gap_ = mean_se([r["reference"]["average"]["elbo_gap"] for r in rs])
        ess = mean_se([r["reference"]["average"]["ess"] for r in rs])
        lml = mean_se([_score(r) for r in rs])
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(rs)} | {fmt(gap_)} | "
                     f"{fmt(ess, 0)} | {fmt(lml)} |")
    return "\n".join(lines) + "\n"


def finished_cells(out_dir: str) -> list[tuple[str, str, int]]:
    """(benchmark, cell name, seed) of every finished cell (with eval.json) under `out_dir`."""
    found = []
    for bench in sorted(os.listdir(out_dir)):
        if not os.path.isdir(os.path.join(out_dir, bench)):
            continue
        for name in sorted(os.listdir(os.path.join(out_dir, bench))):
            for seed_dir in sorted(os.listdir(os.path.join(out_dir, bench, name))):
                if (re.fullmatch(r"seed\d+", seed_dir) and os.path.exists(
                        os.path.join(out_dir, bench, name, seed_dir, "eval.json"))):
                    found.append((bench, name, int(seed_dir[4:])))
    if not found:
        raise FileNotFoundError(f"no finished cell (eval.json) under {out_dir}")
    return found


def training_curve(rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """(time_s [V], validation lmlhd_snis [V]) of a cell from the start of its training: a
    warm-started cell's own curve follows the one of the run it starts from."""
    t, v = workdir_lib.validation_curve(os.path.join(rec["workdir"], "metrics.jsonl"))
    warm = rec.get("init_from")
    if warm and os.path.isdir(warm):
        t0, v0 = training_curve(dict(workdir=warm, init_from=workdir_lib.read_config(
            warm).train.get("init_from", "")))
        before = t0 < (t.min() if t.size else np.inf)
        t, v = np.concatenate([t0[before], t]), np.concatenate([v0[before], v])
    return t, v


def best_by(t: np.ndarray, v: np.ndarray, when: float) -> float:
    """The best validation reached by training time `when` (nan before the first one)."""
    reached = v[t <= when]
    return float(reached.max()) if reached.size else float("nan")


BUDGET_FRACTIONS = (0.25, 0.5, 1.0)


def _training_steps(rec: dict) -> tuple[float, float]:
    """(steps, steps/s) of the cell's last training line (nan if none)."""
    lines = [ln for ln in workdir_lib.read_metrics(os.path.join(rec["workdir"], "metrics.jsonl"))
             if "steps_per_sec" in ln]
    return ((float(lines[-1]["step"]), float(lines[-1]["steps_per_sec"])) if lines
            else (float("nan"), float("nan")))


def t_sweep_rows(records: list[dict]) -> list[dict]:
    """One row per (benchmark, T, method) of the T sweep's main cells (not the warm starts, which
    are in their diffusion's curve): test lmlhd_snis and the
    best validation at each of BUDGET_FRACTIONS of the budget (mean ± se over seeds), median
    steps and steps/s, and GMM-NP's measured per-task state."""
    swept = [r for r in records if r.get("main", True) and not r["method"].endswith(WARM)
             and re.search(r"_T\d+$", r["benchmark"])]
    order = method_order(records)
    rows = []

    def key(r):
        name, num_tasks = r["benchmark"].rsplit("_T", 1)
        return name, int(num_tasks), r["method"]

    for name, num_tasks, method in sorted({key(r) for r in swept},
                                          key=lambda k: (k[0], k[1], order(k[2]))):
        rs = [r for r in swept if key(r) == (name, num_tasks, method)]
        budget = max(r["time_budget_s"] for r in rs)
        curves = [training_curve(r) for r in rs]
        steps = np.array([_training_steps(r) for r in rs])
        state = [r["eval"]["posterior_state_bytes"] for r in rs
                 if "posterior_state_bytes" in r["eval"]]
        rows.append(dict(
            benchmark=name, num_tasks=num_tasks, method=method, seeds=len(rs),
            budget_s=budget, lmlhd_snis=mean_se([_score(r) for r in rs]),
            best_validation={f: mean_se([best_by(t, v, f * budget) for t, v in curves])
                             for f in BUDGET_FRACTIONS},
            steps=float(np.median(steps[:, 0])), steps_per_s=float(np.median(steps[:, 1])),
            state_bytes=state[0] if state else None))
    return rows


def t_sweep_table(rows: list[dict]) -> str:
    if not rows:
        return ""
    at = " / ".join(f"{f:g}" for f in BUDGET_FRACTIONS)
    lines = [f"| benchmark | T | method | seeds | test lmlhd_snis at the budget | best validation "
             f"at {at} of the budget | steps (steps/s) | per-task state (MB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        best = " / ".join("–" if np.isnan(m) else fmt((m, se), 1)
                          for m, se in r["best_validation"].values())
        state = "–" if r["state_bytes"] is None else f"{r['state_bytes'] / 1e6:.1f}"
        lines.append(f"| {r['benchmark']} | {r['num_tasks']} | {r['method']} | {r['seeds']} | "
                     f"{fmt(r['lmlhd_snis'])} | {best} | {r['steps']:.0f} "
                     f"({r['steps_per_s']:.0f}) | {state} |")
    return (f"Budget {rows[0]['budget_s']:g} s of training per cell.\n\n"
            + "\n".join(lines) + "\n")
