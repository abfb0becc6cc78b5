"""Data layer: benchmark generation and caching, .npz loading, training batches and masks.

from amvi_jax.data import load_benchmark, default_data_config
data = load_benchmark(default_data_config())   # MetaDataset of float32 numpy arrays
"""

from amvi_jax.data.batching import (
    TrainBatch,
    first_n_mask,
    sample_context_masks,
    sample_task_indices,
    sample_train_batch,
)
from amvi_jax.data.benchmarks import default_data_config, load_benchmark
from amvi_jax.data.families import BENCHMARKS
from amvi_jax.data.npz import load_npz
from amvi_jax.data.tasks import MetaDataset, TaskSet, validate_tasks

__all__ = [
    "BENCHMARKS",
    "MetaDataset",
    "TaskSet",
    "TrainBatch",
    "default_data_config",
    "first_n_mask",
    "load_benchmark",
    "load_npz",
    "sample_context_masks",
    "sample_task_indices",
    "sample_train_batch",
    "validate_tasks",
]
