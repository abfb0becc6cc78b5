"""Methods x benchmarks x seeds: train (or reuse), evaluate, reference log Z, one table.

Every cell (benchmark, method, seed) is an ordinary run directory under the output dir, so a
finished cell is reused and an interrupted one resumes. Diffusions start from the Gaussian
neural process of the same benchmark and seed (`train.init_from`): one pre-training serves
every sampler and every K of the sweep.

The reference log Z (Metropolis-corrected AIS from the prior, `amvi_jax.reference`) is computed
with each trained model's own decoder on the first `reference_tasks` test tasks, so
`elbo_gap = log Z_ref - ELBO` measures how well that method's posterior fits that model.
"""

import ast
import importlib
import json
import os
import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from amvi_jax import evaluate, reference, train
from amvi_jax.data import first_n_mask

METHODS = ("np", "np_mean", "ula", "mcd", "uha", "ldvi", "cmcd", "gmm")
DIFFUSIONS = ("ula", "mcd", "uha", "ldvi", "cmcd")
PRESETS = ("tiny", "cpu", "paper")
BASE_METHOD = "np"


def preset_settings(preset: str) -> ml_collections.ConfigDict:
    """Budgets: `tiny` (tests, seconds), `cpu` (2 cores, minutes), `paper` (accelerators)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    if preset == "tiny":
        return ml_collections.ConfigDict(dict(
            data=dict(num_tasks=8, num_points=8, num_test_points=16, num_validation_tasks=4,
                      num_test_tasks=4),
            model=dict(encoder_hidden=(16,), decoder_hidden=(16,)),
            sampler=dict(hidden=(8,)),
            gaussian_steps=12, diffusion_steps=4, num_steps=2, k_sweep=(1, 2),
            eval=dict(context_sizes=(0, 8), num_particles=16, task_chunk=4,
                      validation_particles=8, plot_tasks=0, plot_context_sizes=(2,)),
            gmm_steps=6, reference_tasks=2, reference_context_sizes=(8,),
            ais_temperatures=8, ais_particles=16, ais_pilots=8, ais_transition="hmc",
            posterior_tasks=2, posterior_context_size=2))
    if preset == "cpu":
        return ml_collections.ConfigDict(dict(
            data=dict(num_test_tasks=64), model={}, sampler={},
            gaussian_steps=10_000, diffusion_steps=500, num_steps=8, k_sweep=(2, 4, 8, 16, 32),
            eval=dict(num_particles=1024, plot_tasks=2),
            gmm_steps=10_000, reference_tasks=4, reference_context_sizes=(1, 4, 16),
            ais_temperatures=512, ais_particles=1024, ais_pilots=256, ais_transition="mala",
            posterior_tasks=3, posterior_context_size=2))
    return ml_collections.ConfigDict(dict(  # Volpp et al.'s test split, longer training
        data={}, model={}, sampler={},
        gaussian_steps=50_000, diffusion_steps=5_000, num_steps=8, k_sweep=(4, 8, 16, 32, 64),
        eval={}, gmm_steps=50_000, reference_tasks=32,
        reference_context_sizes=(0, 1, 2, 4, 6, 8, 12, 16),
        ais_temperatures=1024, ais_particles=1024, ais_pilots=256, ais_transition="hmc",
        posterior_tasks=4, posterior_context_size=2))


# The fields that define the likelihood model p(y | x, z) p(z); the encoder is not among them.
SHARED_MODEL_FIELDS = ("dim_z", "decoder_hidden", "activation", "learn_std_y", "std_y",
                       "std_y_min")


def _config_module(method: str):
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    return importlib.import_module(f"configs.{method}")


def method_config(method: str, benchmark: str, seed: int, preset: str,
                  num_steps: int | None = None, model_like: str = "",
                  overrides: dict | None = None) -> ml_collections.ConfigDict:
    """The method's own config file with the preset's budget, benchmark and seed applied.

    `model_like`: a method whose decoder and latent (SHARED_MODEL_FIELDS) every method uses
    instead of its own, e.g. "gmm" compares all methods on GMM-NP's model (d_z = 3, tanh 8-8
    decoder, fixed noise); empty: each method's own model.
    `overrides`: {"sampler.stop_grad_score": True, ...}, applied last to every config that
    has the field (so sampler options reach the diffusions and leave np alone).
    """
    config = _method_config(method, benchmark, seed, preset, num_steps, model_like)
    for key, value in (overrides or {}).items():
        if _has_field(config, key):
            config.update_from_flattened_dict({key: value})
    return config


def _has_field(config, dotted: str) -> bool:
    *parents, leaf = dotted.split(".")
    for name in parents:
        if name not in config:
            return False
        config = config[name]
    return isinstance(config, ml_collections.ConfigDict) and leaf in config


def parse_overrides(items) -> dict:
    """["sampler.stop_grad_score=True", "train.num_steps=100"] -> {dotted key: Python value}."""
    overrides = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r}: expected field.path=value")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text  # a bare string, e.g. sampler.name=ula
    return overrides


def _method_config(method, benchmark, seed, preset, num_steps, model_like):
    p = preset_settings(preset)
    config = _config_module(method).get_config()
    config.seed = seed
    config.data.benchmark = benchmark
    config.data.update(p.data.to_dict())
    config.eval.update(p.eval.to_dict())
    if method != "gmm":
        config.model.update(p.model.to_dict())
    if model_like:
        shared = _config_module(model_like).get_config().model
        config.model.update({k: shared[k] for k in SHARED_MODEL_FIELDS})
    if method == "gmm":
        config.train.num_steps = p.gmm_steps
        return config
    if method in DIFFUSIONS:
        config.sampler.update(p.sampler.to_dict())
        config.sampler.num_steps = num_steps or p.num_steps
        config.train.pretrain_steps = 0
        config.train.num_steps = p.diffusion_steps
        every = max(1, p.diffusion_steps // 4)
    else:
        config.train.num_steps = p.gaussian_steps
        every = max(1, p.gaussian_steps // 10)
    config.train.update(dict(validate_every=every, checkpoint_every=every,
                             log_every=max(1, every // 2)))
    return config


def cell_dir(out_dir: str, benchmark: str, method: str, seed: int, num_steps=None) -> str:
    return os.path.join(out_dir, _slug(benchmark), _cell_name(method, num_steps), f"seed{seed}")


def _cell_name(method: str, num_steps=None) -> str:
    """`<method>` for a main cell, `<method>_k<K>` for a K-sweep cell (see `_record`)."""
    return method if num_steps is None else f"{method}_k{num_steps}"


def _slug(benchmark: str) -> str:
    return os.path.splitext(os.path.basename(benchmark))[0]


def _load_model(workdir: str):
    """(config, model, best params, dataset) of a finished run (amortized or GMM-NP)."""
    config = train.read_config(workdir)
    config.train.init_from = ""  # already consumed: the checkpoint holds the result
    dataset = train.load_data(config)
    dim_x, dim_y = dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]
    if config.method == "gmm":
        from amvi_jax import gmm_np

        model, params = gmm_np.restore_model(workdir, dim_x, dim_y,
                                             dataset.meta_train.x.shape[0])
    else:
        model, params = train.restore_model(workdir, dim_x, dim_y)
    return config, model, params, dataset


def _reference_fn(model, params, ais_config: reference.AISConfig):
    """(key, x [C, d_x], y [C, d_y], mask [C]) -> AISOutput: AIS from the prior N(0, I)."""
    def run_ais(k, x, y, mask):
        zeros = jnp.zeros(model.dim_z)
        return reference.ais(k, model.log_target(params, x, y, mask), zeros, zeros + 1.0,
                             ais_config)

    return run_ais


def reference_gap(workdir: str, num_tasks: int, context_sizes, ais_config: reference.AISConfig,
                  seed: int = 0) -> dict:
    """AIS log Z_ref, the method's ELBO and ESS on the first `num_tasks` test tasks.

    -> {"context_sizes": {n: {log_z_ref, elbo, elbo_gap, ess} medians}, "average": ...};
    cached in workdir/reference.json.
    """
    path = os.path.join(workdir, "reference.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    config, model, params, dataset = _load_model(workdir)
    tasks = dataset.test._replace(x=dataset.test.x[:num_tasks], y=dataset.test.y[:num_tasks])
    key = jax.random.PRNGKey(seed)
    per_task = evaluate.per_task_metrics(
        evaluate.make_batch_metrics(model, config.eval.num_particles), params,
        jax.random.fold_in(key, 1), tasks.x, tasks.y, context_sizes, num_tasks)
    num_points = tasks.x.shape[1]
    run_ais = _reference_fn(model, params, ais_config)
    log_z_ref = lambda *args: run_ais(*args).log_z

    result = {"context_sizes": {}, "num_tasks": int(num_tasks),
              "ais": dict(ais_config._asdict())}
    for n in context_sizes:
        c = evaluate.context_bucket(n, num_points)
        mask = first_n_mask(c, n)
        keys = jax.random.split(jax.random.fold_in(key, n), num_tasks)
        ref = np.asarray(jax.jit(jax.vmap(log_z_ref, (0, 0, 0, None)))(
            keys, tasks.x[:, :c], tasks.y[:, :c], mask))
        elbo = per_task[int(n)]["elbo"]
        result["context_sizes"][str(n)] = dict(
            log_z_ref=float(np.median(ref)), elbo=float(np.median(elbo)),
            elbo_gap=float(np.median(ref - elbo)), ess=float(np.median(per_task[int(n)]["ess"])))
    sizes = result["context_sizes"].values()
    result["average"] = {k: float(np.mean([s[k] for s in sizes]))
                         for k in ("log_z_ref", "elbo", "elbo_gap", "ess")}
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    return result


def _ais_config(preset: str) -> reference.AISConfig:
    p = preset_settings(preset)
    return reference.AISConfig(num_temperatures=p.ais_temperatures, num_particles=p.ais_particles,
                               num_pilot_particles=p.ais_pilots, transition=p.ais_transition)


def run_cell(out_dir: str, benchmark: str, method: str, seed: int, preset: str,
             num_steps: int | None = None, model_like: str = "",
             overrides: dict | None = None) -> dict:
    """Trains/evaluates one cell (and its Gaussian base for diffusions) -> its record."""
    _train_cell(out_dir, benchmark, method, seed, preset, num_steps, model_like, overrides)
    return _record(out_dir, _slug(benchmark), _cell_name(method, num_steps), seed, preset)


def _train_cell(out_dir, benchmark, method, seed, preset, num_steps, model_like, overrides):
    """Trains and evaluates the cell's run directory unless it already has its eval.json."""
    workdir = cell_dir(out_dir, benchmark, method, seed, num_steps)
    config = method_config(method, benchmark, seed, preset, num_steps, model_like, overrides)
    if method in DIFFUSIONS:
        _train_cell(out_dir, benchmark, BASE_METHOD, seed, preset, None, model_like, overrides)
        config.train.init_from = cell_dir(out_dir, benchmark, BASE_METHOD, seed)
    logging.info("cell %s / %s / seed %d%s", benchmark, method, seed,
                 "" if num_steps is None else f" / K={num_steps}")
    if not os.path.exists(os.path.join(workdir, "eval.json")):
        train.run_experiment(config, workdir)


def posterior_samples(workdir: str, num_tasks: int, context_size: int,
                      ais_config: reference.AISConfig, num_particles: int = 1024,
                      seed: int = 0) -> dict:
    """The method's particles z ~ q and AIS reference particles on the first test tasks.

    -> {"z" [T, P, d_z], "log_w" [T, P], "z_ref" [T, P_ref, d_z], "log_w_ref" [T, P_ref]},
    with the model's own decoder for both; cached in workdir/posterior_samples.npz.
    """
    path = os.path.join(workdir, "posterior_samples.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return dict(f)
    _, model, params, dataset = _load_model(workdir)
    num_points = dataset.test.x.shape[1]
    c = evaluate.context_bucket(context_size, num_points)
    mask = first_n_mask(c, context_size)
    x, y = dataset.test.x[:num_tasks, :c], dataset.test.y[:num_tasks, :c]
    key_q, key_ref = jax.random.split(jax.random.PRNGKey(seed))
    keys_q = jax.random.split(key_q, num_tasks)
    out = jax.jit(jax.vmap(lambda k, xi, yi: model.sample(params, k, xi, yi, mask,
                                                          num_particles)))(keys_q, x, y)
    ref = jax.jit(jax.vmap(_reference_fn(model, params, ais_config), (0, 0, 0, None)))(
        jax.random.split(key_ref, num_tasks), x, y, mask)
    result = dict(z=np.asarray(out.z), log_w=np.asarray(out.log_w), z_ref=np.asarray(ref.z),
                  log_w_ref=np.asarray(ref.log_w), context_size=np.asarray(context_size))
    np.savez(path, **result)
    return result


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def aggregate(records: list[dict]) -> list[dict]:
    """One row per (benchmark, method): mean and standard error over seeds."""
    rows = []
    main = [r for r in records if r.get("main", True)]  # K-sweep cells stay out of the table
    keys = sorted({(r["benchmark"], r["method"]) for r in main},
                  key=lambda k: (k[0], METHODS.index(k[1])))
    for bench, method in keys:
        rs = [r for r in main if (r["benchmark"], r["method"]) == (bench, method)]
        row = dict(benchmark=bench, method=method, seeds=len(rs))
        row["lmlhd_snis"] = _mean_se([r["eval"]["average"]["lmlhd_snis_median"] for r in rs])
        row["lmlhd_mc"] = _mean_se([r["eval"]["average"]["lmlhd_mc_median"] for r in rs])
        row["mse"] = _mean_se([r["eval"]["average"]["mse_median"] for r in rs])
        by_n = {}
        for n in rs[0]["eval"]["context_sizes"]:
            by_n[n] = _mean_se([r["eval"]["context_sizes"][n]["lmlhd_snis_median"] for r in rs])
        row["lmlhd_snis_by_context"] = by_n
        refs = [r["reference"] for r in rs if "reference" in r]
        if refs:
            row["elbo_gap"] = _mean_se([x["average"]["elbo_gap"] for x in refs])
            row["ess"] = _mean_se([x["average"]["ess"] for x in refs])
        base = {r["seed"]: r for r in main if (r["benchmark"], r["method"]) == (bench,
                                                                              BASE_METHOD)}
        paired = [r for r in rs if r["seed"] in base]
        if method != BASE_METHOD and paired:  # the same seed's np: same tasks, same data
            score = lambda r: r["eval"]["average"]["lmlhd_snis_median"]
            row["gain_vs_np"] = _mean_se([score(r) - score(base[r["seed"]]) for r in paired])
        times = [r["eval"].get("test_time") for r in rs if r["eval"].get("test_time")]
        if times:
            row["per_task_s"] = float(np.median([t["per_task_s"] for t in times]))
            row["test_split_s"] = float(np.median([t["test_split_s"] for t in times]))
        rows.append(row)
    return rows


def _fmt(pair, digits=2) -> str:
    mean, se = pair
    return f"{mean:.{digits}f}" if np.isnan(se) else f"{mean:.{digits}f} ± {se:.{digits}f}"


def markdown_table(rows: list[dict]) -> str:
    lines = ["| benchmark | method | seeds | lmlhd_snis (median, avg over n) | gain over np "
             "(paired) | lmlhd_mc | ELBO gap (nats) | ESS of 1024 | test time / task (s) | "
             "test split (s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        gap = _fmt(r["elbo_gap"]) if "elbo_gap" in r else "–"
        gain = f"{r['gain_vs_np'][0]:+.2f}" if "gain_vs_np" in r else "–"
        if "gain_vs_np" in r and not np.isnan(r["gain_vs_np"][1]):
            gain += f" ± {r['gain_vs_np'][1]:.2f}"
        ess = _fmt(r["ess"], 0) if "ess" in r else "–"
        per_task = f"{r['per_task_s']:.4f}" if "per_task_s" in r else "–"
        split = f"{r['test_split_s']:.2f}" if "test_split_s" in r else "–"
        lines.append(f"| {r['benchmark']} | {r['method']} | {r['seeds']} | "
                     f"{_fmt(r['lmlhd_snis'])} | {gain} | {_fmt(r['lmlhd_mc'])} | {gap} | "
                     f"{ess} | "
                     f"{per_task} | {split} |")
    return "\n".join(lines) + "\n"


def _sweep_records(records: list[dict]) -> list[dict]:
    """The K sweep: cells of the (benchmark, method, seed)s that have sweep cells, plus their
    main cell (the preset's K), so every K is averaged over the same seeds."""
    swept = {(r["benchmark"], r["method"], r["seed"]) for r in records
             if not r.get("main", True) and "reference" in r}
    return [r for r in records
            if (r["benchmark"], r["method"], r["seed"]) in swept and "reference" in r]


def k_sweep_table(records: list[dict]) -> str:
    sweep = _sweep_records(records)
    if not sweep:
        return ""
    lines = ["| benchmark | method | K | seeds | ELBO gap (nats) | ESS of 1024 | lmlhd_snis |",
             "|---|---|---|---|---|---|---|"]
    for key in sorted({(r["benchmark"], r["method"], r["num_steps"]) for r in sweep}):
        rs = [r for r in sweep if (r["benchmark"], r["method"], r["num_steps"]) == key]
        gap = _mean_se([r["reference"]["average"]["elbo_gap"] for r in rs])
        ess = _mean_se([r["reference"]["average"]["ess"] for r in rs])
        lml = _mean_se([r["eval"]["average"]["lmlhd_snis_median"] for r in rs])
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(rs)} | {_fmt(gap)} | "
                     f"{_fmt(ess, 0)} | {_fmt(lml)} |")
    return "\n".join(lines) + "\n"


def plot_figures(records: list[dict], rows: list[dict], out_dir: str) -> list[str]:
    """Predictive log-likelihood against context size per method; ELBO gap against K."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for bench in sorted({r["benchmark"] for r in rows}):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for r in (r for r in rows if r["benchmark"] == bench):
            ns = sorted(r["lmlhd_snis_by_context"], key=int)
            mean = [r["lmlhd_snis_by_context"][n][0] for n in ns]
            ax.plot([int(n) for n in ns], mean, "o-", label=r["method"], ms=3)
        ax.set(xlabel="context size n", ylabel="median lmlhd_snis (nats / task)", title=bench)
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(os.path.join(out_dir, f"lmlhd_vs_context_{bench}.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    sweep = _sweep_records(records)
    if sweep:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for bench, method in sorted({(r["benchmark"], r["method"]) for r in sweep}):
            ks = sorted({r["num_steps"] for r in sweep
                         if (r["benchmark"], r["method"]) == (bench, method)})
            gaps = [np.mean([r["reference"]["average"]["elbo_gap"] for r in sweep
                             if (r["benchmark"], r["method"], r["num_steps"])
                             == (bench, method, k)]) for k in ks]
            ax.plot(ks, gaps, "o-", label=f"{method} ({bench})")
        ax.set(xscale="log", xlabel="K (diffusion steps)", ylabel="ELBO gap (nats)",
               title="ELBO gap against K")
        ax.set_xticks(sorted({r["num_steps"] for r in sweep}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.get_xaxis().set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(fontsize=7)
        fig.tight_layout()
        paths.append(os.path.join(out_dir, "elbo_gap_vs_k.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def plot_posteriors(records: list[dict], out_dir: str, preset: str) -> list[str]:
    """Per benchmark: each method's q samples beside AIS reference samples (first seed).

    Rows are methods, columns test tasks; every panel uses that method's own decoder for its
    reference, so the latent spaces of different rows are not comparable (only the fit is).
    Reference particles are resampled by their AIS weights; z ~ q is shown unweighted.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    p = preset_settings(preset)
    num_tasks, n = p.posterior_tasks, p.posterior_context_size
    paths = []
    main = [r for r in records if r.get("main", True)]
    for bench in sorted({r["benchmark"] for r in main}):
        seed = min(r["seed"] for r in main if r["benchmark"] == bench)
        cells = [r for r in main if r["benchmark"] == bench and r["seed"] == seed]
        cells.sort(key=lambda r: METHODS.index(r["method"]))
        fig, axes = plt.subplots(len(cells), num_tasks, squeeze=False,
                                 figsize=(2.4 * num_tasks, 2.2 * len(cells)))
        for i, rec in enumerate(cells):
            samples = posterior_samples(rec["workdir"], num_tasks, n, _ais_config(preset),
                                        num_particles=p.ais_particles, seed=seed)
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
        fig.tight_layout()
        paths.append(os.path.join(out_dir, f"posterior_samples_{bench}.png"))
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def run(out_dir: str, methods, benchmarks, seeds, preset: str, sweep_methods=("ldvi",),
        sweep_seeds=None, model_like: str = "", overrides: dict | None = None) -> dict:
    """The whole grid plus the K sweep (on `sweep_seeds`, default the first seed); writes
    results.json, results.md and figures. `model_like`, `overrides`: see `method_config`."""
    for m in (*methods, *sweep_methods, *([model_like] if model_like else [])):
        _config_module(m)  # unknown names fail here, before any training
    for key in overrides or {}:
        if not any(_has_field(method_config(m, benchmarks[0], 0, preset), key)
                   for m in (*methods, *sweep_methods)):
            raise ValueError(f"override {key!r}: no such field in the configs of "
                             f"{', '.join((*methods, *sweep_methods))}")
    for m in sweep_methods:
        if m not in DIFFUSIONS:
            raise ValueError(f"sweep method {m!r} has no K; valid: {', '.join(DIFFUSIONS)}")
    os.makedirs(out_dir, exist_ok=True)
    records = []
    for bench in benchmarks:
        for seed in seeds:
            for method in methods:
                records.append(run_cell(out_dir, bench, method, seed, preset,
                                        model_like=model_like, overrides=overrides))
            sweep_now = seed == seeds[0] if sweep_seeds is None else seed in sweep_seeds
            for method in (sweep_methods if sweep_now else ()):
                main_k = preset_settings(preset).num_steps
                for k in preset_settings(preset).k_sweep:
                    if k == main_k and method in methods:
                        continue  # the main cell already is this K
                    records.append(run_cell(out_dir, bench, method, seed, preset, num_steps=k,
                                            model_like=model_like, overrides=overrides))
    return report(out_dir, records, preset, model_like)


def _record(out_dir: str, benchmark: str, name: str, seed: int, preset: str) -> dict | None:
    """The record of a finished cell directory (None if it has no eval.json yet): its
    eval.json and reference log Z / ELBO gap; cells named `<method>_k<K>` are sweep cells."""
    method, k = re.fullmatch(r"(.+?)(?:_k(\d+))?", name).groups()
    workdir = os.path.join(out_dir, benchmark, name, f"seed{seed}")
    if method not in METHODS or not os.path.exists(os.path.join(workdir, "eval.json")):
        return None
    with open(os.path.join(workdir, "eval.json")) as f:
        summary = json.load(f)
    config = train.read_config(workdir)
    p = preset_settings(preset)
    record = dict(benchmark=benchmark, method=method, seed=seed,
                  num_steps=None if method == "gmm" else config.sampler.num_steps,
                  eval=summary, workdir=workdir,
                  reference=reference_gap(workdir, p.reference_tasks, p.reference_context_sizes,
                                          _ais_config(preset), seed))
    if k is not None:
        record["main"] = False
    return record


def collect(out_dir: str, preset: str, model_like: str = "") -> dict:
    """The table of every finished cell under `out_dir`, training nothing (cells of any
    methods, benchmarks and seeds, e.g. from several runs of the runner); writes the same
    results.json, results.md and figures as `run`. Missing references are computed."""
    records = []
    for bench in sorted(os.listdir(out_dir)):
        if not os.path.isdir(os.path.join(out_dir, bench)):
            continue
        for name in sorted(os.listdir(os.path.join(out_dir, bench))):
            for seed_dir in sorted(os.listdir(os.path.join(out_dir, bench, name))):
                if re.fullmatch(r"seed\d+", seed_dir):
                    record = _record(out_dir, bench, name, int(seed_dir[4:]), preset)
                    records += [record] if record else []
    if not records:
        raise FileNotFoundError(f"no finished cell (eval.json) under {out_dir}")
    return report(out_dir, records, preset, model_like)


def report(out_dir: str, records: list[dict], preset: str, model_like: str = "") -> dict:
    """results.json, results.md and figures of `records` -> the results dict."""
    rows = aggregate(records)
    methods = sorted({r["method"] for r in records}, key=METHODS.index)
    seeds = sorted({r["seed"] for r in records})
    results = dict(preset=preset, methods=methods,
                   benchmarks=sorted({r["benchmark"] for r in records}), seeds=seeds,
                   model_like=model_like, rows=rows, records=records)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    figures = plot_figures(records, rows, out_dir) + plot_posteriors(records, out_dir, preset)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        model = f", every method on the model of `{model_like}`" if model_like else ""
        f.write(f"# Benchmark results (preset `{preset}`, seeds {seeds}{model})\n\n")
        f.write(markdown_table(rows))
        sweep = k_sweep_table(records)
        if sweep:
            f.write("\n## ELBO gap against K\n\n" + sweep)
        f.write("\n" + "\n".join(f"![{os.path.basename(p)}]({os.path.basename(p)})"
                                 for p in figures) + "\n")
    return results
