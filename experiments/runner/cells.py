"""The grid of the benchmark runner: which methods exist, each cell's config, training a cell.

A *method* of the runner is a config file `configs/<name>.py` (every one but the shared base
`default.py` and the budgets `presets.py`), so a new config is a new row with no other change.
A cell (benchmark, method, seed[, K]) is an ordinary run directory
`<out>/<benchmark>/<method>[_k<K>]/seed<seed>`: a finished cell (with eval.json) is reused, an
interrupted one resumes. Diffusion cells warm-start (`train.init_from`) from the Gaussian cell
of the same benchmark and seed whose config has the same model section (np for ldvi,
np_attention for ldvi_attention), so one pre-training serves every sampler and every K.

A benchmark may carry a number of meta-training tasks, `<benchmark>@T<T>` (directory
`<benchmark>_T<T>`): the T sweep (`preset.num_tasks`). Under a wall-clock budget
(`preset.time_budget_s` > 0) every cell stops at the budget, and a diffusion cell, whose clock
continues from its warm start, starts from a Gaussian cell `<base>_warm` given the share
`preset.warm_start_share` of it: a diffusion and np then cost the same wall time.

A cell's metrics are all computed here, when it finishes: its eval.json (`experiment`) and the
AIS reference on the preset's reference tasks (`cell_reference`: the ELBO gap, lmlhd under the
exact posterior of its own decoder, the model / inference split; `amvi_jax.gap`, cached in the
cell as reference.json). The report only reads them.
"""

import ast
import functools
import importlib
import os
import pkgutil

import ml_collections
from absl import logging

import configs
from amvi_jax import experiment, gap, reference

NOT_METHODS = ("default", "presets")  # configs/ modules that are not a runner method
WARM = "_warm"  # suffix of a warm-start Gaussian cell under a wall-clock budget
# The fields that define the likelihood model p(y | x, z) p(z); the encoder is not among them.
SHARED_MODEL_FIELDS = ("dim_z", "decoder_hidden", "activation", "learn_std_y", "std_y",
                       "std_y_min", "heteroscedastic_std", "x_frequencies", "grid_shape")


@functools.cache
def available_methods() -> tuple[str, ...]:
    """Names of the config files in configs/ that define a runner method."""
    return tuple(sorted(m.name for m in pkgutil.iter_modules(configs.__path__)
                        if m.name not in NOT_METHODS and not m.name.startswith("_")))


def base_config(method: str) -> ml_collections.ConfigDict:
    """configs/<method>.py's own config; unknown names list the valid ones."""
    if method not in available_methods():
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(available_methods())}")
    return importlib.import_module(f"configs.{method}").get_config()


def is_diffusion(config) -> bool:
    return config.method == "amortized" and config.sampler.name != "gaussian"


@functools.cache
def warm_start_method(method: str) -> str:
    """The Gaussian method whose cell a diffusion method's cells start from: the amortized
    K = 0 config with the same model section (np first among equals)."""
    model = base_config(method).model.to_dict()
    candidates = [m for m in available_methods()
                  if (c := base_config(m)).method == "amortized"
                  and c.sampler.name == "gaussian" and c.model.to_dict() == model]
    if not candidates:
        raise ValueError(f"method {method!r}: no Gaussian config in configs/ has its model "
                         "section, so no cell can warm-start it")
    return sorted(candidates, key=lambda m: (m != "np", m))[0]


def has_field(config, dotted: str) -> bool:
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


def _update_existing(config, section: str, values) -> None:
    """Sets the fields of `values` that config.<section> has (e.g. a network width only for
    samplers with a network)."""
    for key, value in values.items():
        if has_field(config, f"{section}.{key}"):
            config[section][key] = value


def method_config(method: str, benchmark: str, seed: int, preset, num_steps: int | None = None,
                  model_like: str = "", overrides: dict | None = None):
    """The method's own config file with the preset's budget, benchmark and seed applied.

    `model_like`: a method whose decoder and latent (SHARED_MODEL_FIELDS) every method uses
    instead of its own, e.g. "gmm" compares all methods on GMM-NP's model (d_z = 3, tanh 8-8
    decoder, fixed noise); empty: each method's own model.
    `overrides`: {"sampler.stop_grad_score": True, ...}, applied last to every config that
    has the field (so sampler options reach the diffusions and leave np alone).
    """
    config = base_config(method)
    config.seed = seed
    config.data.benchmark, num_tasks = split_num_tasks(benchmark)
    config.data.update(preset.data.to_dict())
    if num_tasks is not None:
        config.data.num_tasks = num_tasks
    config.eval.update(preset.eval.to_dict())
    amortized = config.method == "amortized"
    if amortized:
        config.model.update(preset.model.to_dict())
    config.model.update(preset.get("model_all", {}))
    if model_like:
        shared = base_config(model_like).model
        config.model.update({k: shared[k] for k in SHARED_MODEL_FIELDS})
    if not amortized:
        if config.method not in preset.steps:
            raise ValueError(f"preset {preset.name!r} has no steps.{config.method} budget")
        config.train.num_steps = preset.steps[config.method]
    else:
        if is_diffusion(config):
            _update_existing(config, "sampler", preset.sampler)
            config.sampler.num_steps = num_steps or preset.num_steps
            config.train.pretrain_steps = 0
            config.train.num_steps = preset.steps.diffusion
            every = max(1, preset.steps.diffusion // 4)
        else:
            config.train.num_steps = preset.steps.gaussian
            every = max(1, preset.steps.gaussian // 10)
        config.train.update(dict(validate_every=every, checkpoint_every=every,
                                 log_every=max(1, every // 2)))
    _update_existing(config, "train", preset.get("train", {}))
    if "gmm" in config:
        _update_existing(config, "gmm", preset.get("gmm", {}))
    config.train.time_budget_s = float(preset.get("time_budget_s", 0.0))
    for key, value in (overrides or {}).items():
        if has_field(config, key):
            config.update_from_flattened_dict({key: value})
    return config


def with_num_tasks(benchmark: str, num_tasks: int | None) -> str:
    """"sinusoid1d", 1024 -> "sinusoid1d@T1024" (None: unchanged)."""
    return benchmark if num_tasks is None else f"{benchmark}@T{int(num_tasks)}"


def split_num_tasks(benchmark: str) -> tuple[str, int | None]:
    """"sinusoid1d@T1024" -> ("sinusoid1d", 1024); without @T: (benchmark, None)."""
    name, sep, tasks = benchmark.rpartition("@T")
    return (name, int(tasks)) if sep and tasks.isdigit() else (benchmark, None)


def benchmark_slug(benchmark: str) -> str:
    name, num_tasks = split_num_tasks(benchmark)
    slug = os.path.splitext(os.path.basename(name))[0]
    return slug if num_tasks is None else f"{slug}_T{num_tasks}"


def cell_name(method: str, num_steps=None) -> str:
    """`<method>` for a main cell, `<method>_k<K>` for a K-sweep cell."""
    return method if num_steps is None else f"{method}_k{num_steps}"


def cell_dir(out_dir: str, benchmark: str, method: str, seed: int, num_steps=None) -> str:
    return os.path.join(out_dir, benchmark_slug(benchmark), cell_name(method, num_steps),
                        f"seed{seed}")


def ais_config(preset) -> reference.AISConfig:
    """The AIS settings of the preset's `reference` section."""
    r = preset.reference
    return reference.AISConfig(num_temperatures=r.num_temperatures,
                               num_particles=r.num_particles,
                               num_pilot_particles=r.num_pilot_particles,
                               transition=r.transition)


def cell_reference(workdir: str, preset, seed: int) -> dict:
    """The AIS reference of a finished cell on the preset's reference tasks and context sizes
    (`gap.reference_gap`; computed once, then read from the cell's reference.json)."""
    r = preset.reference
    return gap.reference_gap(workdir, r.tasks, r.context_sizes, ais_config(preset), seed)


def train_cell(out_dir, benchmark, method, seed, preset, num_steps=None, model_like="",
               overrides=None, with_reference=True) -> str:
    """Trains and evaluates a cell (and first its warm-start cell) unless it already has its
    eval.json, then computes its reference unless it has one -> the cell's directory."""
    workdir = cell_dir(out_dir, benchmark, method, seed, num_steps)
    own = method.removesuffix(WARM)
    config = method_config(own, benchmark, seed, preset, num_steps, model_like, overrides)
    if own != method:  # a diffusion's warm start under a budget: its share of the budget
        config.train.time_budget_s *= preset.warm_start_share
    if is_diffusion(config):
        base = warm_start_method(method)
        if config.train.time_budget_s:
            base += WARM
        train_cell(out_dir, benchmark, base, seed, preset, None, model_like, overrides,
                   with_reference=False)
        config.train.init_from = cell_dir(out_dir, benchmark, base, seed)
    logging.info("cell %s / %s / seed %d%s", benchmark, method, seed,
                 "" if num_steps is None else f" / K={num_steps}")
    if not os.path.exists(os.path.join(workdir, "eval.json")):
        experiment.train_and_evaluate(config, workdir)
    if with_reference:
        cell_reference(workdir, preset, seed)
    return workdir
