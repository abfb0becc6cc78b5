"""Config checks at the boundary: impossible values fail before any work, naming the field."""

import os

from amvi_jax import networks, samplers
from amvi_jax.data import BENCHMARKS


def _fail(field: str, value, why: str):
    raise ValueError(f"config.{field}={value!r}: {why}")


def _positive_int(config, field: str, allow_zero: bool = False):
    section, name = field.split(".")
    value = config[section][name]
    low = 0 if allow_zero else 1
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        _fail(field, value, f"must be an integer >= {low}")


def _positive(config, field: str):
    section, name = field.split(".")
    value = config[section][name]
    if not value > 0:
        _fail(field, value, "must be > 0")


def validate(config) -> None:
    """Raises ValueError naming the first impossible field of a full experiment config."""
    if config.method not in ("amortized", "gmm"):
        _fail("method", config.method, "unknown method; valid: amortized, gmm")
    if not isinstance(config.num_devices, int) or config.num_devices < 0:
        _fail("num_devices", config.num_devices, "must be an integer >= 0 (0 = all devices)")
    bench = config.data.benchmark
    if bench.endswith(".npz"):
        if not os.path.exists(bench):
            _fail("data.benchmark", bench, "no such .npz file")
    elif bench not in BENCHMARKS:
        _fail("data.benchmark", bench,
              f"unknown benchmark; valid names: {', '.join(BENCHMARKS)} or a path to a .npz file")
    for f in ("data.num_tasks", "data.num_points", "data.num_test_points",
              "data.num_validation_tasks", "data.num_test_tasks"):
        _positive_int(config, f)
    if config.data.num_test_points < config.data.num_points:
        _fail("data.num_test_points", config.data.num_test_points,
              f"must be >= data.num_points={config.data.num_points}")
    if not config.data.noise_std >= 0:
        _fail("data.noise_std", config.data.noise_std, "must be >= 0")
    if not 0 < config.data.holdout_fraction < 1:
        _fail("data.holdout_fraction", config.data.holdout_fraction, "must lie in (0, 1)")

    _positive_int(config, "model.dim_z")
    if config.model.aggregation not in networks.AGGREGATIONS:
        _fail("model.aggregation", config.model.aggregation,
              f"unknown aggregation; valid: {', '.join(networks.AGGREGATIONS)}")
    _positive(config, "model.std_y_min")
    _positive(config, "model.std_y")
    if config.model.learn_std_y and config.model.std_y <= config.model.std_y_min:
        _fail("model.std_y", config.model.std_y,
              f"the initial learned noise std must exceed model.std_y_min="
              f"{config.model.std_y_min}")
    for f in ("model.encoder_hidden", "model.decoder_hidden"):
        widths = config.model[f.split(".")[1]]
        if len(widths) < 1 or min(widths) < 1:
            _fail(f, widths, "must be a non-empty tuple of positive widths")

    samplers.from_config(config.sampler)  # raises, naming the sampler field

    for f in ("train.num_steps", "train.batch_size", "train.num_subsets", "train.num_particles",
              "train.log_every", "train.validate_every", "train.checkpoint_every"):
        _positive_int(config, f)
    _positive_int(config, "train.pretrain_steps", allow_zero=True)
    if config.train.pretrain_steps > config.train.num_steps:
        _fail("train.pretrain_steps", config.train.pretrain_steps,
              f"must be <= train.num_steps={config.train.num_steps}")
    _positive(config, "train.learning_rate")
    _positive(config, "train.diffusion_learning_rate")
    _positive(config, "train.grad_clip_norm")
    if config.train.init_from and not os.path.isdir(config.train.init_from):
        _fail("train.init_from", config.train.init_from, "no such run directory")
    if config.train.batch_size > config.data.num_tasks and not bench.endswith(".npz"):
        _fail("train.batch_size", config.train.batch_size,
              f"exceeds data.num_tasks={config.data.num_tasks}")

    for f in ("eval.num_particles", "eval.task_chunk", "eval.validation_particles"):
        _positive_int(config, f)
    _positive_int(config, "eval.plot_tasks", allow_zero=True)
    for f in ("eval.context_sizes", "eval.plot_context_sizes"):
        sizes = config.eval[f.split(".")[1]]
        if len(sizes) < 1 or min(sizes) < 0 or max(sizes) > config.data.num_test_points:
            _fail(f, sizes, f"must be non-empty, in 0..data.num_test_points="
                            f"{config.data.num_test_points}")
