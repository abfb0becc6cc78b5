"""Training batches and context masks with fixed shapes (docs/DESIGN.md sections 2, 4).

Nothing here is jitted itself: jit belongs at the outermost step; every function is jittable
with the sizes (num_points, num_subsets, batch_size) static.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class TrainBatch(NamedTuple):
    """One meta-training batch.

    Attributes:
      x: float32 [B, N, d_x] inputs of B tasks.
      y: float32 [B, N, d_y] outputs.
      mask: float32 [B, S, N] context masks, S random context subsets per task (1 = in context).
    """

    x: jax.Array
    y: jax.Array
    mask: jax.Array


def sample_context_masks(key: jax.Array, num_points: int, num_subsets: int,
                         min_size: int = 1) -> jax.Array:
    """Random context subsets of one task: size uniform in min_size..N, then uniformly random
    points.

    Args:
      key: PRNG key.
      num_points: N (static).
      num_subsets: S (static).
      min_size: smallest context size (static); 0 includes the empty context.

    Returns:
      mask: float32 [S, N]; row s has exactly size_s ones, size_s ~ U{min_size, ..., N}.
    """
    size_key, order_key = jax.random.split(key)
    sizes = jax.random.randint(size_key, (num_subsets, 1), min_size, num_points + 1)
    # The rank of i.i.d. uniform noise is a uniformly random permutation, so "rank < size"
    # picks a uniformly random subset of exactly that size, with no Python loop.
    noise = jax.random.uniform(order_key, (num_subsets, num_points))
    ranks = jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1)
    return (ranks < sizes).astype(jnp.float32)


def first_n_mask(num_points: int, n) -> jax.Array:
    """float32 [N], ones on the first n points (the evaluation contexts, docs/DESIGN.md section 5).

    ``n`` may be a traced integer (n = 0 gives an empty context, n >= N the whole task).
    """
    return (jnp.arange(num_points) < n).astype(jnp.float32)


def sample_task_indices(key: jax.Array, num_tasks: int, batch_size: int) -> jax.Array:
    """B task indices: a uniformly random set of B distinct tasks if B <= T, else B i.i.d. ones.

    Floyd's algorithm (Bentley & Floyd, CACM 1987): for j = T - B, ..., T - 1 draw t uniform in
    0..j and take t, or j if t is already taken. Every B-subset is equally likely and the work is
    O(B^2), where `jax.random.choice(replace=False)` permutes all T tasks at every step (7 ms of
    a 9 ms step at T = 16384 on a 2-core CPU). The order within the batch is not uniform, which
    the mean over the batch does not see.

    Args:
      key: PRNG key.
      num_tasks: T (static).
      batch_size: B (static).

    Returns:
      int32 [B] indices in 0..T-1.
    """
    if batch_size > num_tasks:
        return jax.random.randint(key, (batch_size,), 0, num_tasks)
    keys = jax.random.split(key, batch_size)

    def take(i, chosen):
        j = num_tasks - batch_size + i
        t = jax.random.randint(keys[i], (), 0, j + 1)
        return chosen.at[i].set(jnp.where(jnp.any(chosen == t), j, t))

    return jax.lax.fori_loop(0, batch_size, take, jnp.full((batch_size,), -1, jnp.int32))


def sample_train_batch(
    key: jax.Array, x: jax.Array, y: jax.Array, batch_size: int, num_subsets: int,
    min_context_size: int = 1,
) -> TrainBatch:
    """Samples tasks and independent context masks for one training step.

    Tasks are drawn without replacement when batch_size <= T (with replacement otherwise), by
    `sample_task_indices` in O(B^2) work, whatever T.

    Args:
      key: PRNG key.
      x: [T, N, d_x] meta-training inputs.
      y: [T, N, d_y] meta-training outputs.
      batch_size: B (static).
      num_subsets: S context subsets per task (static).
      min_context_size: smallest context size (static; 0 includes the empty context).

    Returns:
      TrainBatch(x [B, N, d_x], y [B, N, d_y], mask float32 [B, S, N]).
    """
    num_tasks, num_points = x.shape[0], x.shape[1]
    task_key, mask_key = jax.random.split(key)
    index = sample_task_indices(task_key, num_tasks, batch_size)
    mask_keys = jax.random.split(mask_key, batch_size)
    mask = jax.vmap(lambda k: sample_context_masks(k, num_points, num_subsets,
                                                   min_context_size))(mask_keys)
    return TrainBatch(x=jnp.asarray(x)[index], y=jnp.asarray(y)[index], mask=mask)
