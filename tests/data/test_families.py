"""Synthetic task families: seeds, ranges, formulas, GP covariances (docs/DESIGN.md section 6)."""

import numpy as np
import pytest

from amvi_jax.data import families

PARAMETRIC = families.PARAMETRIC_FAMILIES
GP = families.GP_FAMILIES

# Written out independently of amvi_jax so a wrong formula or bound in the library fails here.
BOUNDS = {
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
X_RANGES = {
    "sinusoid1d": (-5, 5),
    "linesine1d": (-5, 5),
    "quadratic1d": (-1, 1),
    "affine1d": (-1, 1),
    "gp_rbf": (-2, 2),
    "gp_matern52": (-2, 2),
    "gp_weakly_periodic": (-2, 2),
}


def true_function(family, p, x):
    """x [T, N]; p: dict of [T] arrays."""
    p = {k: v[:, None] for k, v in p.items()}
    if family == "sinusoid1d":
        return p["A"] * np.sin(x + p["phi"])
    if family == "linesine1d":
        return np.where(p["c"] < 0.5, p["A"] * np.sin(x + p["phi"]), p["m"] * x + p["b"])
    if family == "quadratic1d":
        return (p["a"] * (x + p["b"])) ** 2 + p["c"]
    if family == "affine1d":
        return p["m"] * x + p["b"]
    raise AssertionError(family)


def true_kernel(family, d):
    d = np.abs(d)
    if family == "gp_rbf":
        return np.exp(-(d**2) / 2)
    if family == "gp_matern52":
        r = d / 0.25
        return (1 + np.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-np.sqrt(5) * r)
    if family == "gp_weakly_periodic":
        return np.exp(-2 * np.sin(d / 2) ** 2 - d**2 / 8)
    raise AssertionError(family)


def gen(family, seeds=(0, 1, 2), num_tasks=8, num_points=5, noise_std=0.25):
    return families.generate(family, num_tasks, num_points, noise_std, *seeds)


@pytest.mark.parametrize("family", families.SYNTHETIC_FAMILIES)
def test_shapes_dtypes(family):
    x, y, _ = gen(family)
    assert x.shape == (8, 5, 1) and y.shape == (8, 5, 1)
    assert x.dtype == np.float32 and y.dtype == np.float32


@pytest.mark.parametrize("family", families.SYNTHETIC_FAMILIES)
def test_each_seed_drives_only_its_factor(family):
    x, y, p = gen(family)
    x2, y2, p2 = gen(family)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    for k in p:
        np.testing.assert_array_equal(p[k], p2[k])
    task_key = "eps" if family in GP else next(iter(p))

    # Noise seed: y changes, x and task parameters do not.
    xn, yn, pn = gen(family, seeds=(0, 1, 3))
    np.testing.assert_array_equal(x, xn)
    np.testing.assert_array_equal(p[task_key], pn[task_key])
    assert not np.allclose(y, yn)

    # Input seed: x changes, task parameters do not.
    xx, yx, px = gen(family, seeds=(0, 7, 2))
    assert not np.allclose(x, xx)
    np.testing.assert_array_equal(p[task_key], px[task_key])

    # Task seed: parameters change, x does not.
    xt, yt, pt = gen(family, seeds=(5, 1, 2))
    np.testing.assert_array_equal(x, xt)
    assert not np.allclose(p[task_key], pt[task_key])
    assert not np.allclose(y, yt)


@pytest.mark.parametrize("family", families.SYNTHETIC_FAMILIES)
def test_equal_seed_values_still_give_independent_factors(family):
    # seed_task == seed_x == seed_noise must not reuse one random stream for all factors
    # (that would make e.g. a task's amplitude equal to its first input, up to scaling).
    x, y, p = gen(family, seeds=(3, 3, 3), num_tasks=20, num_points=4, noise_std=0.5)
    if family in GP:
        noise = (y[..., 0] - p["f"]) / 0.5
        assert np.abs(noise - p["eps"]).min() > 1e-4
    else:
        low, high = X_RANGES[family]
        ux = ((x.astype(np.float64) - low) / (high - low)).ravel()
        for key, (lo, hi) in BOUNDS[family].items():
            up = (p[key] - lo) / (hi - lo)
            assert np.abs(up[:, None] - ux[None, :]).min() > 1e-6, key


@pytest.mark.parametrize("family", families.SYNTHETIC_FAMILIES)
def test_more_tasks_keep_the_first_tasks(family):
    x, y, _ = gen(family, num_tasks=4)
    x2, y2, _ = gen(family, num_tasks=9)
    np.testing.assert_allclose(x, x2[:4])
    np.testing.assert_allclose(y, y2[:4], atol=1e-5)


@pytest.mark.parametrize("family", families.SYNTHETIC_FAMILIES)
def test_inputs_in_range_and_span_it(family):
    x, _, _ = gen(family, num_tasks=500, num_points=4)
    low, high = X_RANGES[family]
    width = high - low
    assert x.min() >= low and x.max() <= high
    assert x.min() < low + 0.02 * width and x.max() > high - 0.02 * width


@pytest.mark.parametrize("family", PARAMETRIC)
def test_parameters_in_bounds_and_span_them(family):
    _, _, p = gen(family, num_tasks=2000, num_points=2)
    assert set(p) == set(BOUNDS[family])
    for key, (low, high) in BOUNDS[family].items():
        width = high - low
        assert p[key].shape == (2000,)
        assert p[key].min() >= low and p[key].max() <= high, key
        assert p[key].min() < low + 0.01 * width and p[key].max() > high - 0.01 * width, key
        # Uniform: mean in the middle of the interval.
        assert abs(p[key].mean() - (low + high) / 2) < 0.03 * width, key


@pytest.mark.parametrize("family", PARAMETRIC)
@pytest.mark.parametrize("noise_std", [0.25, 0.7])
def test_y_is_function_plus_noise(family, noise_std):
    x, y, p = gen(family, num_tasks=2000, num_points=4, noise_std=noise_std)
    residual = y[..., 0] - true_function(family, p, x[..., 0].astype(np.float64))
    assert abs(residual.std() - noise_std) < 0.05 * noise_std
    assert abs(residual.mean()) < 0.05 * noise_std


@pytest.mark.parametrize("family", PARAMETRIC)
def test_noise_free(family):
    x, y, p = gen(family, num_tasks=50, noise_std=0.0)
    f = true_function(family, p, x[..., 0].astype(np.float64))
    np.testing.assert_allclose(y[..., 0], f, rtol=1e-5, atol=1e-5)


def test_linesine_mixes_both_kinds():
    _, _, p = gen("linesine1d", num_tasks=2000)
    assert 0.45 < np.mean(p["c"] < 0.5) < 0.55


def test_family_function_matches_generator():
    x, y, p = gen("sinusoid1d", noise_std=0.0)
    np.testing.assert_allclose(families.family_function("sinusoid1d", p, x), y[..., 0], atol=1e-5)


@pytest.mark.parametrize("family", GP)
def test_gp_y_is_f_plus_noise(family):
    x, y, p = gen(family, num_tasks=1000, num_points=8)
    assert p["f"].shape == (1000, 8)
    # x is stored as float32, f was drawn at the float64 inputs.
    np.testing.assert_allclose(families.sample_gp(family, x[..., 0], p["eps"]), p["f"], atol=1e-4)
    residual = y[..., 0] - p["f"]
    assert abs(residual.std() - 0.25) < 0.02
    # Prior variance 1 at every point.
    assert abs(p["f"].var() - 1.0) < 0.1


@pytest.mark.parametrize("family", GP)
def test_gp_covariance_at_fixed_inputs_matches_kernel(family):
    # Many tasks at the same few inputs: the empirical covariance of f is the kernel matrix.
    # 50k tasks give a standard error ~0.006, well below the ~0.05 by which RBF and weakly
    # periodic differ at d = 1.
    points = np.array([-2.0, -1.0, 0.0, 0.3, 1.2, 2.0])
    num_tasks = 50_000
    x = np.broadcast_to(points, (num_tasks, len(points)))
    eps = np.random.default_rng(0).standard_normal(x.shape)
    f = families.sample_gp(family, x, eps)
    empirical = f.T @ f / num_tasks
    expected = true_kernel(family, points[:, None] - points[None, :])
    np.testing.assert_allclose(empirical, expected, atol=0.03)


@pytest.mark.parametrize("family", GP)
def test_gp_generated_pairs_follow_kernel(family):
    # End to end through generate(): E[f_i f_j] = k(x_i - x_j), averaged in distance bins.
    x, _, p = gen(family, num_tasks=3000, num_points=6)
    x, f = x[..., 0].astype(np.float64), p["f"]
    i, j = np.triu_indices(6, k=1)
    d = np.abs(x[:, i] - x[:, j]).ravel()
    prod = (f[:, i] * f[:, j]).ravel()
    edges = np.arange(0.0, 3.01, 0.25)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        sel = (d >= low) & (d < high)
        expected = true_kernel(family, d[sel]).mean()
        assert abs(prod[sel].mean() - expected) < 0.07, (low, prod[sel].mean(), expected)


def test_bad_arguments():
    with pytest.raises(ValueError, match="Unknown synthetic family.*sinusoid1d"):
        families.generate("sine", 2, 2)
    with pytest.raises(ValueError, match="noise_std"):
        families.generate("sinusoid1d", 2, 2, noise_std=-1.0)
    with pytest.raises(ValueError, match="seed for 'x'"):
        families.generate("sinusoid1d", 2, 2, seed_x=-1)


def test_meta_dataset_splits_use_new_tasks():
    data = families.make_meta_dataset(
        "affine1d", num_tasks=8, num_validation_tasks=8, num_test_tasks=8
    )
    longer = families.make_meta_dataset(
        "affine1d", num_tasks=8, num_points=64, num_validation_tasks=8, num_test_tasks=8
    )
    np.testing.assert_array_equal(longer.meta_train.x[:, :16], data.meta_train.x)
    np.testing.assert_array_equal(longer.meta_train.y[:, :16], data.meta_train.y)
    # Validation/test use seed + 1000 / + 2000: exactly the corresponding generate() calls.
    xv, yv, _ = families.generate("affine1d", 8, 64, 0.25, 1000, 1001, 1002)
    xt, yt, _ = families.generate("affine1d", 8, 64, 0.25, 2000, 2001, 2002)
    np.testing.assert_array_equal(data.validation.x, xv)
    np.testing.assert_array_equal(data.test.y, yt)
    assert not np.allclose(data.validation.x, longer.meta_train.x)
