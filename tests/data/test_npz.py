"""Bring-your-own .npz meta-datasets and the shared validator."""

import numpy as np
import pytest

from amvi_jax.data import load_benchmark, load_npz, validate_tasks


def tasks(num_tasks=20, num_points=5, d_x=2, d_y=1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_tasks, num_points, d_x))
    # Task t's outputs all equal t, so a task can be identified after splitting.
    y = np.broadcast_to(
        np.arange(num_tasks, dtype=float)[:, None, None], (num_tasks, num_points, d_y)
    )
    return x, y.copy()


def write(tmp_path, name="tasks.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def ids(task_set):
    return set(task_set.y[:, 0, 0].astype(int).tolist())


def test_good_file_without_test_arrays(tmp_path):
    x, y = tasks()
    data = load_npz(write(tmp_path, x=x, y=y), holdout_fraction=0.25, seed=3)
    assert data.name == "tasks"
    # 25% of 20 = 5 held out: 2 validation, 3 test; 15 meta-training tasks.
    assert data.meta_train.x.shape == (15, 5, 2) and data.meta_train.y.shape == (15, 5, 1)
    assert data.validation.x.shape == (2, 5, 2) and data.test.x.shape == (3, 5, 2)
    assert data.meta_train.x.dtype == np.float32 and data.test.y.dtype == np.float32
    train, val, test = ids(data.meta_train), ids(data.validation), ids(data.test)
    assert not train & val and not train & test and not val & test
    assert train | val | test == set(range(20))
    # Tasks keep their points: x of task t is row t of the file.
    t = sorted(train)[0]
    np.testing.assert_allclose(data.meta_train.x[0], x[t].astype(np.float32))
    # Seeded: same seed, same split; another seed, another split.
    assert ids(load_npz(tmp_path / "tasks.npz", seed=3).test) == test
    assert ids(load_npz(tmp_path / "tasks.npz", seed=4).test) != test


def test_good_file_with_test_arrays(tmp_path):
    x, y = tasks()
    x_test, y_test = tasks(num_tasks=4, num_points=7, seed=1)
    data = load_npz(write(tmp_path, x=x, y=y, x_test=x_test, y_test=y_test))
    np.testing.assert_allclose(data.test.x, x_test.astype(np.float32))
    np.testing.assert_allclose(data.test.y, y_test.astype(np.float32))
    assert data.validation.x.shape == (5, 5, 2) and data.meta_train.x.shape == (15, 5, 2)
    assert not ids(data.validation) & ids(data.meta_train)


def test_load_benchmark_dispatches_npz(tmp_path):
    x, y = tasks()
    path = write(tmp_path, x=x, y=y)
    cfg = type("Cfg", (), {"benchmark": str(path), "holdout_fraction": 0.5, "seed_task": 0})
    data = load_benchmark(cfg)
    assert data.meta_train.x.shape == (10, 5, 2) and data.test.x.shape == (5, 5, 2)


@pytest.mark.parametrize(
    "make, match",
    [
        pytest.param(lambda x, y: {"x": x}, r"missing array\(s\) \['y'\]", id="missing_y"),
        pytest.param(
            lambda x, y: {"x": x[..., 0], "y": y}, r"'x' has rank 2.*\[T, N, d_x\]", id="rank2_x"
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": y[..., 0]}, r"'y' has rank 2.*\[T, N, d_y\]", id="rank2_y"
        ),
        pytest.param(lambda x, y: {"x": x[None], "y": y}, r"'x' has rank 4", id="rank4_x"),
        pytest.param(
            lambda x, y: {"x": x[:19], "y": y},
            r"different numbers of tasks T.*\(19, 5, 2\)",
            id="mismatched_T",
        ),
        pytest.param(
            lambda x, y: {"x": x[:, :4], "y": y},
            r"different numbers of points N",
            id="mismatched_N",
        ),
        pytest.param(
            lambda x, y: {"x": np.where(x > 1.5, np.nan, x), "y": y},
            r"'x' has \d+ non-finite.*NaN",
            id="nan_x",
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": np.where(y == 3, np.inf, y)},
            r"'y' has 5 non-finite values \(0 NaN",
            id="inf_y",
        ),
        pytest.param(
            lambda x, y: {"x": x.astype(str), "y": y}, r"'x' has non-numeric dtype", id="str_dtype"
        ),
        pytest.param(
            lambda x, y: {"x": x > 0, "y": y}, r"'x' has non-numeric dtype bool", id="bool_dtype"
        ),
        pytest.param(
            lambda x, y: {"x": x[:3], "y": y[:3]},
            r"too few tasks to hold out.*T=3",
            id="too_few_tasks",
        ),
        pytest.param(
            lambda x, y: {"x": x[:, :0], "y": y[:, :0]}, r"'x' has an empty axis", id="empty_axis"
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": y, "x_test": x},
            r"has 'x_test' but is missing 'y_test'",
            id="x_test_without_y_test",
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": y, "xtest": x},
            r"unexpected array\(s\) \['xtest'\]",
            id="unexpected_key",
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": y, "x_test": x[..., :1], "y_test": y},
            r"'x' has feature size 2 but 'x_test' has 1",
            id="feature_mismatch_test",
        ),
        pytest.param(
            lambda x, y: {"x": x, "y": y, "x_test": x[:2], "y_test": y},
            r"'x_test' and 'y_test' have different numbers of tasks",
            id="test_T_mismatch",
        ),
    ],
)
def test_bad_files_are_rejected(tmp_path, make, match):
    x, y = tasks()
    with pytest.raises(ValueError, match=match):
        load_npz(write(tmp_path, **make(x, y)))


def test_nan_count_is_reported(tmp_path):
    x, y = tasks()
    x[0, 0, 0] = x[3, 1, 1] = np.nan
    x[5, 2, 0] = np.inf
    with pytest.raises(ValueError, match=r"'x' has 3 non-finite values \(2 NaN, 1 inf"):
        load_npz(write(tmp_path, x=x, y=y))


def test_object_arrays_are_not_unpickled(tmp_path):
    x, y = tasks()
    obj = np.empty(20, dtype=object)
    obj[:] = [row for row in x]
    with pytest.raises(ValueError, match="'x' is not a numeric array"):
        load_npz(write(tmp_path, x=obj, y=y))


def test_holdout_fraction_range(tmp_path):
    x, y = tasks()
    with pytest.raises(ValueError, match="holdout_fraction"):
        load_npz(write(tmp_path, x=x, y=y), holdout_fraction=1.0)


def test_validate_tasks_direct():
    x, y = tasks(num_tasks=3)
    x32, y32 = validate_tasks(x, y, "mine")
    assert x32.dtype == np.float32 and y32.shape == (3, 5, 1)
    with pytest.raises(ValueError, match="^mine: 'y' has rank 2"):
        validate_tasks(x, y[..., 0], "mine")
    with pytest.raises(ValueError, match=r"^mine: 'x' has 1 non-finite.*beyond float32"):
        validate_tasks(np.where(x == x[0, 0, 0], 1e300, x), y, "mine")
