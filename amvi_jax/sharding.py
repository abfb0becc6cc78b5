"""Data parallelism with jax.sharding: the task axis is split over a 1-D `data` mesh.

Parameters and the (small) meta-dataset are replicated; inside the jitted steps the batch of
tasks gets a sharding constraint on its leading axis and XLA's SPMD partitioner splits the
vmapped sampler runs and inserts the cross-device mean of the loss and gradients.
"""

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def initialize_distributed() -> None:
    """Multi-host start-up: coordinates the processes from the environment (TPU pods, SLURM)."""
    jax.distributed.initialize()


def make_mesh(num_devices: int = 0) -> Mesh:
    """A 1-D mesh over the first `num_devices` devices of all processes (0 = all of them)."""
    devices = jax.devices()
    if num_devices < 0 or num_devices > len(devices):
        raise ValueError(f"config.num_devices={num_devices}: must lie in 0..{len(devices)} "
                         f"(0 = all {len(devices)} visible devices)")
    n = num_devices or len(devices)
    return Mesh(np.asarray(devices[:n]), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def over_tasks(mesh: Mesh) -> NamedSharding:
    """Leading (task) axis split over the mesh, everything else replicated."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def shard_tasks(tree, mesh: Mesh):
    """Constrains every leaf's leading axis to be split over `data` (use inside jit)."""
    return jax.lax.with_sharding_constraint(tree, over_tasks(mesh))


def check_divisible(size: int, mesh: Mesh, field: str) -> None:
    n = mesh.devices.size
    if size % n:
        raise ValueError(f"config.{field}={size} must be divisible by the number of devices "
                         f"({n}); set config.num_devices or change {field}")


def is_main_process() -> bool:
    """Only process 0 writes metrics, evaluation summaries and plots."""
    return jax.process_index() == 0
