"""Context masks and training batches (fixed shapes, jittable)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax.data import (
    TrainBatch,
    first_n_mask,
    sample_context_masks,
    sample_task_indices,
    sample_train_batch,
)

# Jitted once for the (N, S) used by all mask tests: compilation dominates on a small CPU.
mask_fn = jax.jit(sample_context_masks, static_argnums=(1, 2))
NUM_POINTS, NUM_SUBSETS = 8, 4000


def test_mask_shape_dtype_and_values():
    mask = mask_fn(jax.random.key(0), NUM_POINTS, NUM_SUBSETS)
    assert mask.shape == (NUM_SUBSETS, NUM_POINTS) and mask.dtype == jnp.float32
    assert set(np.unique(np.asarray(mask)).tolist()) == {0.0, 1.0}


def test_subset_sizes_uniform_and_points_random():
    mask = np.asarray(mask_fn(jax.random.key(1), NUM_POINTS, NUM_SUBSETS))
    sizes = mask.sum(-1).astype(int)
    assert sizes.min() == 1 and sizes.max() == NUM_POINTS
    counts = np.bincount(sizes, minlength=NUM_POINTS + 1)
    assert counts[0] == 0
    expected = NUM_SUBSETS / NUM_POINTS  # 500 per size, sd ~21
    assert np.all(np.abs(counts[1:] - expected) < 100), counts
    # Random points, not a prefix: each point is in the context with prob (N + 1) / (2N).
    inclusion = mask.mean(0)
    np.testing.assert_allclose(inclusion, (NUM_POINTS + 1) / (2 * NUM_POINTS), atol=0.04)
    is_prefix = np.all(mask == (np.arange(NUM_POINTS) < sizes[:, None]), axis=-1)
    assert is_prefix.mean() < 0.5


def test_min_size_zero_includes_the_empty_context():
    fn = jax.jit(sample_context_masks, static_argnums=(1, 2, 3))
    sizes = np.asarray(fn(jax.random.key(1), NUM_POINTS, NUM_SUBSETS, 0)).sum(-1).astype(int)
    counts = np.bincount(sizes, minlength=NUM_POINTS + 1)
    expected = NUM_SUBSETS / (NUM_POINTS + 1)  # 444 per size, sd ~20
    assert np.all(np.abs(counts - expected) < 100), counts
    # min_size = 1 is the default: the same key gives the same masks as before the option.
    np.testing.assert_array_equal(fn(jax.random.key(1), NUM_POINTS, NUM_SUBSETS, 1),
                                  mask_fn(jax.random.key(1), NUM_POINTS, NUM_SUBSETS))


def test_masks_depend_on_key():
    a = mask_fn(jax.random.key(0), NUM_POINTS, NUM_SUBSETS)
    b = mask_fn(jax.random.key(2), NUM_POINTS, NUM_SUBSETS)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, mask_fn(jax.random.key(0), NUM_POINTS, NUM_SUBSETS))


def test_first_n_mask():
    np.testing.assert_array_equal(first_n_mask(5, 2), [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(first_n_mask(5, 0), np.zeros(5))
    np.testing.assert_array_equal(first_n_mask(5, 5), np.ones(5))
    assert first_n_mask(5, 2).dtype == jnp.float32
    traced = jax.jit(first_n_mask, static_argnums=0)
    np.testing.assert_array_equal(traced(4, jnp.asarray(3)), [1, 1, 1, 0])


# One jitted function shared by the tests: each distinct static shape compiles once, which is
# what costs time on a small CPU, and it is the way the training step calls it.
batch_fn = jax.jit(sample_train_batch, static_argnames=("batch_size", "num_subsets"))


@pytest.fixture
def tasks():
    num_tasks, num_points = 10, 6
    x = np.random.default_rng(0).normal(size=(num_tasks, num_points, 2)).astype(np.float32)
    # y identifies the task, so batch rows can be traced back.
    y = np.broadcast_to(np.arange(num_tasks, dtype=np.float32)[:, None, None], (10, 6, 1))
    return x, np.array(y)


def test_sample_train_batch(tasks):
    x, y = tasks
    batch = batch_fn(jax.random.key(0), x, y, batch_size=4, num_subsets=3)
    assert isinstance(batch, TrainBatch)
    assert batch.x.shape == (4, 6, 2) and batch.y.shape == (4, 6, 1)
    assert batch.mask.shape == (4, 3, 6) and batch.mask.dtype == jnp.float32
    idx = np.asarray(batch.y[:, 0, 0]).astype(int)
    assert len(set(idx.tolist())) == 4  # without replacement
    np.testing.assert_array_equal(batch.x, x[idx])
    sizes = np.asarray(batch.mask).sum(-1)
    assert sizes.min() >= 1 and sizes.max() <= 6
    # Independent masks per task.
    assert not np.array_equal(batch.mask[0], batch.mask[1])
    # Other keys pick other tasks; over a few draws every task shows up.
    seen = set()
    for i in range(8):
        seen |= set(
            np.asarray(batch_fn(jax.random.key(i), x, y, batch_size=4, num_subsets=3).y[:, 0, 0])
            .astype(int)
            .tolist()
        )
    assert seen == set(range(10))


def test_task_indices_are_a_uniform_subset():
    # T = 5, B = 2: each of the 10 pairs has probability 1/10. A sampler biased towards late or
    # early indices (Floyd's algorithm with j and t swapped, or t drawn from 0..T-1) fails this.
    draws = np.asarray(jax.jit(jax.vmap(lambda k: sample_task_indices(k, 5, 2)))(
        jax.random.split(jax.random.key(0), 20_000)))
    assert (draws[:, 0] != draws[:, 1]).all() and draws.min() == 0 and draws.max() == 4
    pairs = np.sort(draws, axis=1) @ np.array([5, 1])
    distinct_pairs = [5 * a + b for a in range(5) for b in range(a + 1, 5)]
    counts = np.bincount(pairs, minlength=25)[distinct_pairs]
    assert counts.sum() == 20_000
    # Binomial(20000, 0.1): sd 42; 5 sd.
    np.testing.assert_allclose(counts, 2000, atol=212)
    # B = T: a permutation of all tasks.
    np.testing.assert_array_equal(np.sort(sample_task_indices(jax.random.key(1), 7, 7)),
                                  np.arange(7))


def test_batch_larger_than_task_count(tasks):
    x, y = tasks
    batch = batch_fn(
        jax.random.key(0), jnp.asarray(x), jnp.asarray(y), batch_size=25, num_subsets=3
    )
    assert batch.x.shape == (25, 6, 2) and batch.mask.shape == (25, 3, 6)
    idx = np.asarray(batch.y[:, 0, 0]).astype(int)
    np.testing.assert_array_equal(batch.x, x[idx])
