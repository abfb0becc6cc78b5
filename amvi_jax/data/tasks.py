"""Containers for meta-datasets and the shared validator of task arrays.

Layout (docs/DESIGN.md section 2): a split is a fixed-shape block of tasks, x [T, N, d_x] and
y [T, N, d_y], float32; all tasks of a split have the same number of points N, so variable
context sizes are expressed as masks and everything jits once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TaskSet(NamedTuple):
    """A block of T regression tasks with N points each.

    Attributes:
      x: float32 [T, N, d_x] inputs.
      y: float32 [T, N, d_y] outputs.
    """

    x: np.ndarray
    y: np.ndarray

    @property
    def num_tasks(self) -> int:
        return int(self.x.shape[0])

    @property
    def num_points(self) -> int:
        return int(self.x.shape[1])


class MetaDataset(NamedTuple):
    """The three splits used for meta-training and evaluation.

    Attributes:
      name: benchmark name (or the .npz file stem).
      meta_train: TaskSet [T, N_train, .], the meta-training tasks.
      validation: TaskSet [T_val, N_test, .], new tasks (model selection / early stopping).
      test: TaskSet [T_test, N_test, .], new tasks for the final evaluation (docs/DESIGN.md 5).
      image_shape: (H, W) when the points are the pixels of an H x W image (x = coordinates
        from `images.pixel_coordinates`), else None; figures then show whole images.
    """

    name: str
    meta_train: TaskSet
    validation: TaskSet
    test: TaskSet
    image_shape: tuple[int, int] | None = None

    @property
    def splits(self) -> tuple[TaskSet, TaskSet, TaskSet]:
        """(meta_train, validation, test)."""
        return self.meta_train, self.validation, self.test


def validate_tasks(
    x, y, name: str = "tasks", *, keys: tuple[str, str] = ("x", "y")
) -> tuple[np.ndarray, np.ndarray]:
    """Checks one split of task arrays and returns them as float32 numpy arrays.

    Args:
      x: array-like [T, N, d_x].
      y: array-like [T, N, d_y].
      name: what to call the split in error messages (e.g. "meta_train", "file.npz").
      keys: what to call x and y in error messages (e.g. ("x_test", "y_test")).

    Returns:
      (x, y) as float32 np.ndarrays with the same shapes.

    Raises:
      ValueError: wrong rank (rank-2 [T, N] is rejected on purpose: d must be explicit),
        empty axes, mismatched T or N, non-numeric dtype, or NaN/inf values; the message names
        the split and the array.
    """
    arrays = {}
    x_key, y_key = keys
    for key, value, feature in ((x_key, x, "d_x"), (y_key, y, "d_y")):
        value = np.asarray(value)
        label = f"{name}: '{key}'"
        if not (np.issubdtype(value.dtype, np.integer) or np.issubdtype(value.dtype, np.floating)):
            raise ValueError(
                f"{label} has non-numeric dtype {value.dtype}; expected a float or integer array."
            )
        if value.ndim != 3:
            hint = f" (for scalar {key} use {key}[..., None])" if value.ndim == 2 else ""
            raise ValueError(
                f"{label} has rank {value.ndim} and shape {value.shape}; expected rank 3 with "
                f"shape [T, N, {feature}]{hint}."
            )
        if 0 in value.shape:
            raise ValueError(f"{label} has an empty axis: shape {value.shape} [T, N, {feature}].")
        with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
            converted = value.astype(np.float32)
        bad = int(np.size(converted) - np.count_nonzero(np.isfinite(converted)))
        if bad:
            num_nan = int(np.count_nonzero(np.isnan(converted)))
            raise ValueError(
                f"{label} has {bad} non-finite values ({num_nan} NaN, {bad - num_nan} inf or "
                f"beyond float32 range) out of {converted.size}."
            )
        arrays[key] = converted
    x32, y32 = arrays[x_key], arrays[y_key]
    if x32.shape[0] != y32.shape[0]:
        raise ValueError(
            f"{name}: '{x_key}' and '{y_key}' have different numbers of tasks T: "
            f"{x_key} {x32.shape} vs {y_key} {y32.shape}."
        )
    if x32.shape[1] != y32.shape[1]:
        raise ValueError(
            f"{name}: '{x_key}' and '{y_key}' have different numbers of points N per task: "
            f"{x_key} {x32.shape} vs {y_key} {y32.shape}."
        )
    return x32, y32
