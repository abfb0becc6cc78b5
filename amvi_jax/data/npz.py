"""Bring-your-own meta-dataset from an .npz file.

The file holds ``x`` [T, N, d_x] and ``y`` [T, N, d_y] (the meta-training tasks) and optionally
``x_test`` [T', N', d_x] and ``y_test`` [T', N', d_y] (new tasks for the final evaluation).
Scalar inputs or outputs must still carry their trailing axis (d = 1): a [T, N] array is
rejected rather than guessed at.
"""

from __future__ import annotations

import os

import numpy as np

from amvi_jax.data.tasks import MetaDataset, TaskSet, validate_tasks

REQUIRED_KEYS = ("x", "y")
OPTIONAL_KEYS = ("x_test", "y_test")


def _read_arrays(path: str, name: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        missing = [k for k in REQUIRED_KEYS if k not in keys]
        if missing:
            raise ValueError(
                f"{name}: missing array(s) {missing}; found {sorted(keys)}. Expected 'x' "
                "[T, N, d_x] and 'y' [T, N, d_y], optionally 'x_test' and 'y_test'."
            )
        unexpected = sorted(keys - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
        if unexpected:
            raise ValueError(
                f"{name}: unexpected array(s) {unexpected}; allowed names are "
                f"{list(REQUIRED_KEYS + OPTIONAL_KEYS)}."
            )
        if ("x_test" in keys) != ("y_test" in keys):
            present, absent = ("x_test", "y_test") if "x_test" in keys else ("y_test", "x_test")
            raise ValueError(f"{name}: has '{present}' but is missing '{absent}'; give both.")
        arrays = {}
        for key in sorted(keys):
            try:
                arrays[key] = archive[key]
            except ValueError as err:  # object arrays need pickle, which we never allow
                raise ValueError(f"{name}: array '{key}' is not a numeric array ({err}).") from None
    return arrays


def load_npz(path: str | os.PathLike, holdout_fraction: float = 0.25, seed: int = 0) -> MetaDataset:
    """Loads a user meta-dataset and splits it.

    Without test arrays: a seeded random ``holdout_fraction`` of the T tasks is held out, half
    (rounded down) for validation and the rest for test; the remaining tasks are meta_train.
    With ``x_test``/``y_test``: test = those; validation = a seeded random ``holdout_fraction`` of
    the training tasks. Kept tasks stay in file order.

    Args:
      path: the .npz file.
      holdout_fraction: fraction of the training tasks held out, in (0, 1).
      seed: seed of the holdout selection.

    Returns:
      MetaDataset named after the file stem; float32 arrays.

    Raises:
      ValueError: missing or unexpected arrays, wrong ranks, mismatched T or N between x and y,
        mismatched d_x / d_y between train and test, NaN/inf, non-numeric dtype, or too few tasks
        for the holdout. The message names the file and the array.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    if not 0.0 < holdout_fraction < 1.0:
        raise ValueError(f"holdout_fraction must be in (0, 1), got {holdout_fraction}.")
    arrays = _read_arrays(path, name)
    x, y = validate_tasks(arrays["x"], arrays["y"], name=name)
    num_tasks = x.shape[0]
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_tasks)
    num_holdout = int(round(holdout_fraction * num_tasks))
    if "x_test" in arrays:
        x_test, y_test = validate_tasks(
            arrays["x_test"], arrays["y_test"], name=name, keys=("x_test", "y_test")
        )
        for label, train_array, test_array in (("x", x, x_test), ("y", y, y_test)):
            if train_array.shape[2] != test_array.shape[2]:
                raise ValueError(
                    f"{name}: '{label}' has feature size {train_array.shape[2]} but "
                    f"'{label}_test' has {test_array.shape[2]}; they must match."
                )
        if num_holdout < 1 or num_holdout >= num_tasks:
            raise ValueError(
                f"{name}: too few tasks to hold out a validation split: T={num_tasks} with "
                f"holdout_fraction={holdout_fraction} holds out {num_holdout}; need at least 1 "
                "validation task and 1 training task."
            )
        val_idx = np.sort(perm[:num_holdout])
        test = TaskSet(x_test, y_test)
    else:
        if num_holdout < 2 or num_holdout >= num_tasks:
            raise ValueError(
                f"{name}: too few tasks to hold out validation and test splits: T={num_tasks} "
                f"with holdout_fraction={holdout_fraction} holds out {num_holdout}; need at "
                "least 2 held-out tasks (1 validation, 1 test) and 1 training task. Add tasks, "
                "change holdout_fraction, or provide x_test and y_test."
            )
        num_val = num_holdout // 2
        val_idx = np.sort(perm[:num_val])
        test_idx = np.sort(perm[num_val:num_holdout])
        test = TaskSet(x[test_idx], y[test_idx])
    train_idx = np.sort(perm[num_holdout:])
    meta_train = TaskSet(x[train_idx], y[train_idx])
    return MetaDataset(
        name=os.path.splitext(name)[0],
        meta_train=meta_train,
        validation=TaskSet(x[val_idx], y[val_idx]),
        test=test,
    )
