"""Entry point of the data layer: a data config in, a MetaDataset out."""

from __future__ import annotations

import ml_collections

from amvi_jax.data import images
from amvi_jax.data.builder import MetaDatasetConfig, load_generated
from amvi_jax.data.families import BENCHMARKS
from amvi_jax.data.npz import load_npz
from amvi_jax.data.tasks import MetaDataset

_DEFAULTS = {
    "benchmark": "sinusoid1d",
    "num_tasks": 64,
    "num_points": 16,
    "num_test_points": 64,
    "num_validation_tasks": 64,
    "num_test_tasks": 256,
    "noise_std": 0.25,
    "seed_task": 0,
    "seed_x": 1,
    "seed_noise": 2,
    "data_dir": None,
    "holdout_fraction": 0.25,
    "image_size": 0,
}
_GENERATION_FIELDS = (
    "num_tasks",
    "num_points",
    "num_test_points",
    "num_validation_tasks",
    "num_test_tasks",
    "noise_std",
    "seed_task",
    "seed_x",
    "seed_noise",
)


def default_data_config() -> ml_collections.ConfigDict:
    """Defaults of docs/DESIGN.md section 6: sinusoid1d, 64 x 16 meta-train, 256 x 64 test tasks.

    Fields: benchmark (one of BENCHMARKS or a path ending in .npz), num_tasks, num_points
    (per meta-training task), num_test_points (per validation / test task),
    num_validation_tasks, num_test_tasks, noise_std, seed_task, seed_x, seed_noise, data_dir
    (None: $AMVI_DATA_DIR or ~/.cache/amvi_jax/tfds; for "tfds:<name>" the usual tfds data dir),
    holdout_fraction (.npz files only), image_size ("tfds:<name>" only; 0 = native).
    """
    return ml_collections.ConfigDict(dict(_DEFAULTS))


def load_benchmark(data_config=None) -> MetaDataset:
    """Loads the benchmark a data config describes, generating and caching it on first use.

    Args:
      data_config: an ml_collections.ConfigDict (see default_data_config) or any object with
        those attributes; missing attributes take their defaults, None means all defaults.

    Returns:
      MetaDataset: meta_train [num_tasks, num_points, d_x|d_y], validation
      [num_validation_tasks, num_test_points, .] and test
      [num_test_tasks, num_test_points, .]. For a .npz file the shapes come from the file (see
      load_npz, which uses holdout_fraction and seed_task).

    Raises:
      ValueError: unknown benchmark name (the message lists the valid names) or invalid
        parameters.
    """
    cfg = {key: getattr(data_config, key, default) for key, default in _DEFAULTS.items()}
    benchmark = str(cfg["benchmark"])
    if benchmark.endswith(".npz"):
        return load_npz(benchmark, holdout_fraction=cfg["holdout_fraction"], seed=cfg["seed_task"])
    if images.is_tfds(benchmark):
        return images.load_tfds_images(
            benchmark, image_size=cfg["image_size"], data_dir=cfg["data_dir"],
            **{k: cfg[k] for k in _GENERATION_FIELDS if k not in ("noise_std", "seed_noise")})
    if benchmark not in BENCHMARKS:
        raise ValueError(
            f"Unknown benchmark {benchmark!r}. Valid names: {', '.join(BENCHMARKS)}; "
            f"tfds:<name> for a tensorflow-datasets image dataset; or a path to a .npz file "
            "with x [T, N, d_x] and y [T, N, d_y]."
        )
    config = MetaDatasetConfig.create(benchmark, **{k: cfg[k] for k in _GENERATION_FIELDS})
    return load_generated(config, data_dir=cfg["data_dir"])
