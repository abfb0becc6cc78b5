"""Config checks at the boundary: impossible values fail before any work, naming the field.

`validate` checks what every method reads (data, model, train budget, evaluation), then hands
the config to its method's own `validate` (encoder, sampler, objective; or the GMM section).
"""

import os

from amvi_jax import methods
from amvi_jax.checks import fail, positive, positive_int, widths
from amvi_jax.data import BENCHMARKS, images
from amvi_jax.methods.amortized_step import LR_SCHEDULES


def validate(config) -> None:
    """Raises ValueError naming the first impossible field of a full experiment config."""
    methods.REGISTRY.check(config.method, "method")
    if not isinstance(config.num_devices, int) or config.num_devices < 0:
        fail("num_devices", config.num_devices, "must be an integer >= 0 (0 = all devices)")
    bench = config.data.benchmark
    if bench.endswith(".npz"):
        if not os.path.exists(bench):
            fail("data.benchmark", bench, "no such .npz file")
    elif images.is_tfds(bench):
        if not images.dataset_name(bench):
            fail("data.benchmark", bench, "name a tensorflow-datasets image dataset, e.g. "
                                          "tfds:mnist")
    elif bench not in BENCHMARKS:
        fail("data.benchmark", bench,
             f"unknown benchmark; valid names: {', '.join(BENCHMARKS)}, tfds:<name> (a "
             "tensorflow-datasets image dataset) or a path to a .npz file")
    positive_int(config, "data.image_size", allow_zero=True)
    for f in ("data.num_tasks", "data.num_points", "data.num_test_points",
              "data.num_validation_tasks", "data.num_test_tasks"):
        positive_int(config, f)
    if config.data.num_test_points < config.data.num_points:
        fail("data.num_test_points", config.data.num_test_points,
             f"must be >= data.num_points={config.data.num_points}")
    if not config.data.noise_std >= 0:
        fail("data.noise_std", config.data.noise_std, "must be >= 0")
    if not 0 < config.data.holdout_fraction < 1:
        fail("data.holdout_fraction", config.data.holdout_fraction, "must lie in (0, 1)")

    positive_int(config, "model.dim_z")
    positive(config, "model.std_y_min")
    positive(config, "model.std_y")
    if config.model.learn_std_y and config.model.std_y <= config.model.std_y_min:
        fail("model.std_y", config.model.std_y,
             f"the initial learned noise std must exceed model.std_y_min="
             f"{config.model.std_y_min}")
    widths(config, "model.decoder_hidden")

    for f in ("train.num_steps", "train.log_every", "train.validate_every",
              "train.checkpoint_every", "train.steps_per_call"):
        positive_int(config, f)
    positive(config, "train.learning_rate")
    if config.train.lr_schedule not in LR_SCHEDULES:
        fail("train.lr_schedule", config.train.lr_schedule,
             f"unknown schedule; valid: {', '.join(LR_SCHEDULES)}")
    if not 0.0 <= config.train.lr_final_fraction <= 1.0:
        fail("train.lr_final_fraction", config.train.lr_final_fraction, "must lie in [0, 1]")
    if not config.train.time_budget_s >= 0:
        fail("train.time_budget_s", config.train.time_budget_s, "must be >= 0 (0 = no budget)")
    if not config.train.validate_every_s >= 0:
        fail("train.validate_every_s", config.train.validate_every_s,
             "must be >= 0 (0 = by steps only)")

    for f in ("eval.num_particles", "eval.task_chunk", "eval.validation_particles"):
        positive_int(config, f)
    positive_int(config, "eval.plot_tasks", allow_zero=True)
    if config.eval.literature_points and config.eval.literature_points < 7:
        fail("eval.literature_points", config.eval.literature_points,
             "must be 0 (off) or >= 7 (at least 3 context points and 3 targets)")
    # A .npz file brings its own point counts: its sizes are checked once it is read
    # (`validate_against_data`), not against data.num_test_points, which it ignores.
    bound = None if bench.endswith(".npz") else config.data.num_test_points
    for f in ("eval.context_sizes", "eval.plot_context_sizes"):
        _check_sizes(config, f, bound, "data.num_test_points")

    methods.REGISTRY[config.method].validate(config)


def _check_sizes(config, field: str, bound: int | None, bound_name: str) -> None:
    sizes = config.eval[field.split(".")[1]]
    if len(sizes) < 1 or min(sizes) < 0 or (bound is not None and max(sizes) > bound):
        fail(field, sizes, "must be non-empty and >= 0" if bound is None else
             f"must be non-empty, in 0..{bound_name}={bound}")


def validate_against_data(config, dataset) -> None:
    """The checks that need the data read: context sizes against the test tasks' points; an
    image decoder's grid against the images."""
    grid = tuple(config.model.grid_shape)
    if grid and grid != tuple(dataset.image_shape or ()):
        fail("model.grid_shape", grid,
             f"must be the images' (H, W) = {dataset.image_shape}" if dataset.image_shape
             else f"{dataset.name} is not an image benchmark (its points are not pixels)")
    points = dataset.test.x.shape[1]
    for f in ("eval.context_sizes", "eval.plot_context_sizes"):
        _check_sizes(config, f, points, "the test tasks' points")
