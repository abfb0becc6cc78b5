"""Benchmark task families (docs/DESIGN.md section 6), numpy only.

Every synthetic family is generated from three independent seeds:

- ``seed_task``: the task parameters (for the GP families: the standard-normal draw that, through
  the Cholesky factor of the kernel matrix at the task's inputs, becomes the function values),
- ``seed_x``: the inputs x,
- ``seed_noise``: the Gaussian output noise.

Each seed feeds its own ``np.random.default_rng`` stream, tagged with the factor it drives, so
changing one seed changes only that factor, and equal seed values (e.g. all 0) still give
independent streams. Draws are laid out task-major ([T, ...] arrays drawn in one call), so the
first T tasks do not change when more tasks are requested.

Splits of one meta-dataset (see ``make_meta_dataset``) use derived seeds: meta-training uses the
seeds as given, validation uses ``seed + 1000`` and test ``seed + 2000`` (for each of the three
seeds), so validation and test tasks are new tasks, never meta-training tasks.

Digits (image completion): scikit-learn's bundled 8x8 digits (1797 images, no download). One image
is one task of 64 points; x = (row, column) pixel coordinates scaled to [-1, 1]^2 (d_x = 2, row
-1 is the top), y = intensity / 16 in [0, 1] (d_y = 1), without added noise. seed_task picks the
disjoint image splits, seed_x the random pixel order of each image (offset per split as above).
"""

from __future__ import annotations

import functools

import numpy as np

from amvi_jax.data import images
from amvi_jax.data.tasks import MetaDataset, TaskSet

PARAMETRIC_FAMILIES = ("sinusoid1d", "linesine1d", "quadratic1d", "affine1d")
GP_FAMILIES = ("gp_rbf", "gp_matern52", "gp_weakly_periodic")
SYNTHETIC_FAMILIES = PARAMETRIC_FAMILIES + GP_FAMILIES
BENCHMARKS = SYNTHETIC_FAMILIES + ("digits",)
# (H, W) of the families whose points are the pixels of an image (MetaDataset.image_shape).
IMAGE_SHAPES = {"digits": (8, 8)}

# Uniform bounds of each task parameter, in the column order they are drawn.
PARAMETER_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "sinusoid1d": {"A": (0.1, 5.0), "phi": (0.0, np.pi)},
    "linesine1d": {
        "c": (0.0, 1.0),
        "A": (0.1, 5.0),
        "phi": (0.0, np.pi),
        "m": (-3.0, 3.0),
        "b": (-3.0, 3.0),
    },
    "quadratic1d": {"a": (0.5, 1.5), "b": (-0.9, 0.9), "c": (-1.0, 1.0)},
    "affine1d": {"m": (0.3, 8.0), "b": (-8.0, -3.0)},
}

X_RANGE: dict[str, tuple[float, float]] = {
    "sinusoid1d": (-5.0, 5.0),
    "linesine1d": (-5.0, 5.0),
    "quadratic1d": (-1.0, 1.0),
    "affine1d": (-1.0, 1.0),
    "gp_rbf": (-2.0, 2.0),
    "gp_matern52": (-2.0, 2.0),
    "gp_weakly_periodic": (-2.0, 2.0),
}

GP_JITTER = 1e-6
SPLIT_SEED_OFFSETS = {"meta_train": 0, "validation": 1000, "test": 2000}
NUM_DIGIT_IMAGES = 1797

# Stream tags: they make the three factors independent even when their seeds are equal.
_FACTOR_TAGS = {"task": 0, "x": 1, "noise": 2}


def _rng(seed: int, factor: str) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed for '{factor}' must be a non-negative integer, got {seed!r}.")
    return np.random.default_rng([int(seed), _FACTOR_TAGS[factor]])


def rbf_kernel(d: np.ndarray) -> np.ndarray:
    """Squared exponential, lengthscale 1, variance 1; d = x - x' (any shape)."""
    return np.exp(-0.5 * d**2)


def matern52_kernel(d: np.ndarray, lengthscale: float = 0.25) -> np.ndarray:
    """Matern-5/2, lengthscale 0.25, variance 1; d = x - x' (any shape)."""
    r = np.sqrt(5.0) * np.abs(d) / lengthscale
    return (1.0 + r + r**2 / 3.0) * np.exp(-r)


def weakly_periodic_kernel(d: np.ndarray) -> np.ndarray:
    """k(d) = exp(-2 sin^2(d / 2) - d^2 / 8): a periodic kernel damped by an RBF."""
    return np.exp(-2.0 * np.sin(d / 2.0) ** 2 - d**2 / 8.0)


KERNELS = {
    "gp_rbf": rbf_kernel,
    "gp_matern52": matern52_kernel,
    "gp_weakly_periodic": weakly_periodic_kernel,
}


def family_function(family: str, params: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """Noise-free function of a parametric family, e.g. to plot the true curves.

    Args:
      family: one of PARAMETRIC_FAMILIES.
      params: dict of [T] arrays as returned by ``generate``.
      x: [T, M] or [T, M, 1] inputs (any M, e.g. a dense plotting grid).

    Returns:
      f: [T, M] (float64).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        x = x[..., 0]
    p = {k: np.asarray(v, dtype=np.float64)[:, None] for k, v in params.items()}
    if family == "sinusoid1d":
        return p["A"] * np.sin(x + p["phi"])
    if family == "linesine1d":
        sine = p["A"] * np.sin(x + p["phi"])
        line = p["m"] * x + p["b"]
        return np.where(p["c"] < 0.5, sine, line)
    if family == "quadratic1d":
        return (p["a"] * (x + p["b"])) ** 2 + p["c"]
    if family == "affine1d":
        return p["m"] * x + p["b"]
    raise ValueError(f"No closed-form function for family {family!r}; use {PARAMETRIC_FAMILIES}.")


def sample_gp(family: str, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """Joint GP draw f = L eps at each task's inputs, L = chol(K(x, x) + jitter I).

    Args:
      family: one of GP_FAMILIES.
      x: [T, N] inputs.
      eps: [T, N] standard-normal draws (the task's "parameters").

    Returns:
      f: [T, N] float64 function values.
    """
    kernel = KERNELS[family]
    x = np.asarray(x, dtype=np.float64)
    gram = kernel(x[:, :, None] - x[:, None, :]) + GP_JITTER * np.eye(x.shape[1])
    chol = np.linalg.cholesky(gram)
    return np.einsum("tij,tj->ti", chol, eps)


def generate(
    family: str,
    num_tasks: int,
    num_points: int,
    noise_std: float = 0.25,
    seed_task: int = 0,
    seed_x: int = 1,
    seed_noise: int = 2,
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Generates tasks of one synthetic family.

    Args:
      family: one of SYNTHETIC_FAMILIES.
      num_tasks: T.
      num_points: N points per task.
      noise_std: std of the Gaussian noise added to f (>= 0).
      seed_task, seed_x, seed_noise: the three independent seeds (non-negative ints).

    Returns:
      x: float32 [T, N, 1], uniform in X_RANGE[family].
      y: float32 [T, N, 1] = f(x) + noise_std * standard normal.
      params: dict of task parameters: [T] arrays named as in PARAMETER_BOUNDS for the
        parametric families; for the GP families {"eps": [T, N] standard normals,
        "f": [T, N] noise-free function values}.
    """
    if family not in SYNTHETIC_FAMILIES:
        raise ValueError(
            f"Unknown synthetic family {family!r}; valid names: {', '.join(SYNTHETIC_FAMILIES)}."
        )
    if num_tasks < 1 or num_points < 1:
        raise ValueError(f"num_tasks and num_points must be >= 1, got {num_tasks}, {num_points}.")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}.")
    rng_task, rng_x = _rng(seed_task, "task"), _rng(seed_x, "x")
    rng_noise = _rng(seed_noise, "noise")
    low, high = X_RANGE[family]
    x = rng_x.uniform(low, high, size=(num_tasks, num_points))
    if family in PARAMETRIC_FAMILIES:
        bounds = PARAMETER_BOUNDS[family]
        u = rng_task.uniform(size=(num_tasks, len(bounds)))
        params = {k: lo + (hi - lo) * u[:, j] for j, (k, (lo, hi)) in enumerate(bounds.items())}
        f = family_function(family, params, x)
    else:
        eps = rng_task.standard_normal(size=(num_tasks, num_points))
        f = sample_gp(family, x, eps)
        params = {"eps": eps, "f": f}
    y = f + noise_std * rng_noise.standard_normal(size=(num_tasks, num_points))
    return x[..., None].astype(np.float32), y[..., None].astype(np.float32), params


@functools.lru_cache(maxsize=1)
def _digit_images() -> np.ndarray:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

    images = load_digits().images.reshape(-1, 64) / 16.0
    images.setflags(write=False)
    return images


def digit_tasks(
    image_indices: np.ndarray, num_points: int, seed_x: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tasks from digit images with a seeded random pixel order per image
    (`images.image_tasks`): x float32 [T, N, 2], y float32 [T, N, 1], N <= 64."""
    if not 1 <= num_points <= 64:
        raise ValueError(
            f"digits tasks have 64 pixels; num_points must be in 1..64, got {num_points}."
        )
    pixels = _digit_images()[np.asarray(image_indices)][..., None]
    return images.image_tasks(pixels, 8, 8, num_points, _rng(seed_x, "x"))


def check_parameters(
    family: str,
    num_tasks: int = 64,
    num_points: int = 16,
    num_test_points: int = 64,
    num_validation_tasks: int = 64,
    num_test_tasks: int = 256,
    noise_std: float = 0.25,
    seed_task: int = 0,
    seed_x: int = 1,
    seed_noise: int = 2,
) -> None:
    """Raises ValueError naming the field if ``make_meta_dataset`` would reject the arguments.

    Cheap (nothing is generated), so callers can check before creating cache directories.
    """
    if family not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {family!r}; valid names: {', '.join(BENCHMARKS)}.")
    counts = dict(
        num_tasks=num_tasks,
        num_points=num_points,
        num_test_points=num_test_points,
        num_validation_tasks=num_validation_tasks,
        num_test_tasks=num_test_tasks,
    )
    for key, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{key} must be a positive integer, got {value!r}.")
    for key, value in dict(seed_task=seed_task, seed_x=seed_x, seed_noise=seed_noise).items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{key} must be a non-negative integer, got {value!r}.")
    if not noise_std >= 0:
        raise ValueError(f"noise_std must be >= 0, got {noise_std}.")
    if family == "digits":
        total = num_tasks + num_validation_tasks + num_test_tasks
        if total > NUM_DIGIT_IMAGES:
            raise ValueError(
                f"digits has {NUM_DIGIT_IMAGES} images but num_tasks + num_validation_tasks + "
                f"num_test_tasks = {total}."
            )
        if max(num_points, num_test_points) > 64:
            raise ValueError(
                f"digits tasks have 64 pixels; got num_points={num_points}, "
                f"num_test_points={num_test_points}."
            )


def make_meta_dataset(
    family: str,
    num_tasks: int = 64,
    num_points: int = 16,
    num_test_points: int = 64,
    num_validation_tasks: int = 64,
    num_test_tasks: int = 256,
    noise_std: float = 0.25,
    seed_task: int = 0,
    seed_x: int = 1,
    seed_noise: int = 2,
) -> MetaDataset:
    """Generates all three splits of one benchmark in memory (no caching; see builder.py).

    Synthetic families: the meta-training tasks are generated with max(num_points,
    num_test_points) points, of which meta_train keeps the first num_points (so the tasks do
    not change with num_test_points' share of the random stream). Validation and test use the
    seeds + 1000 and + 2000.

    Digits: a permutation of the 1797 images (seed_task) assigns meta_train = the first
    num_tasks images, test = the last num_test_tasks, validation = the num_validation_tasks
    before those (disjoint; test and validation do not move when num_tasks changes). Pixel
    orders are random per image (seed_x, + 1000 and + 2000 per split); meta_train keeps the
    first num_points pixels. noise_std and seed_noise are unused.

    Returns:
      MetaDataset with meta_train [num_tasks, num_points, d], validation
      [num_validation_tasks, num_test_points, d], test [num_test_tasks, num_test_points, d].
    """
    check_parameters(
        family,
        num_tasks,
        num_points,
        num_test_points,
        num_validation_tasks,
        num_test_tasks,
        noise_std,
        seed_task,
        seed_x,
        seed_noise,
    )
    off = SPLIT_SEED_OFFSETS
    if family == "digits":
        perm = _rng(seed_task, "task").permutation(NUM_DIGIT_IMAGES)
        test_idx = perm[NUM_DIGIT_IMAGES - num_test_tasks :]
        val_idx = perm[NUM_DIGIT_IMAGES - num_test_tasks - num_validation_tasks : -num_test_tasks]
        x, y = digit_tasks(perm[:num_tasks], 64, seed_x + off["meta_train"])
        splits = {
            "validation": digit_tasks(val_idx, num_test_points, seed_x + off["validation"]),
            "test": digit_tasks(test_idx, num_test_points, seed_x + off["test"]),
        }
    else:

        def split(name: str, count: int, points: int) -> tuple[np.ndarray, np.ndarray]:
            x, y, _ = generate(
                family,
                count,
                points,
                noise_std,
                seed_task + off[name],
                seed_x + off[name],
                seed_noise + off[name],
            )
            return x, y

        x, y = split("meta_train", num_tasks, max(num_points, num_test_points))
        splits = {
            "validation": split("validation", num_validation_tasks, num_test_points),
            "test": split("test", num_test_tasks, num_test_points),
        }
    return MetaDataset(
        name=family,
        meta_train=TaskSet(x[:, :num_points].copy(), y[:, :num_points].copy()),
        validation=TaskSet(*splits["validation"]),
        test=TaskSet(*splits["test"]),
        image_shape=IMAGE_SHAPES.get(family),
    )
