"""Digits image completion: shapes, ranges, disjoint splits, random pixel orders."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from amvi_jax.data import families


@pytest.fixture(scope="module")
def data():
    return families.make_meta_dataset("digits")


@pytest.fixture(scope="module")
def whole():
    """The same split with every pixel of the meta-training images (num_points = 64)."""
    return families.make_meta_dataset("digits", num_points=64)


@pytest.fixture(scope="module")
def image_ids():
    images = load_digits().images.reshape(-1, 64) / 16.0
    return {img.astype(np.float32).tobytes(): i for i, img in enumerate(images)}


def to_raster(task_x, task_y):
    """Reassemble one task's 64 pixels into the raster-order image [64]."""
    rows = np.rint((task_x[:, 0] + 1) * 3.5).astype(int)
    cols = np.rint((task_x[:, 1] + 1) * 3.5).astype(int)
    image = np.full(64, np.nan, np.float32)
    image[rows * 8 + cols] = task_y[:, 0]
    return image


def test_shapes(data):
    assert data.name == "digits"
    assert data.meta_train.x.shape == (64, 16, 2) and data.meta_train.y.shape == (64, 16, 1)
    assert data.validation.x.shape == (64, 64, 2) and data.validation.y.shape == (64, 64, 1)
    assert data.test.x.shape == (256, 64, 2) and data.test.y.shape == (256, 64, 1)
    for split in data.splits:
        assert split.x.dtype == np.float32 and split.y.dtype == np.float32


def test_ranges(data):
    grid = np.linspace(-1, 1, 8).astype(np.float32)
    for split in data.splits:
        assert split.x.min() == -1.0 and split.x.max() == 1.0
        assert np.isin(split.x, grid).all()
        assert split.y.min() >= 0.0 and split.y.max() <= 1.0
    assert data.test.y.max() == 1.0 and data.test.y.min() == 0.0


def test_every_task_is_one_whole_image(whole, image_ids):
    for split in (whole.meta_train, whole.validation, whole.test):
        for task_x, task_y in zip(split.x, split.y, strict=True):
            coords = {tuple(c) for c in task_x}
            assert len(coords) == 64  # each pixel exactly once
            assert to_raster(task_x, task_y).tobytes() in image_ids


def test_splits_are_disjoint(whole, image_ids):
    ids = {
        name: {image_ids[to_raster(tx, ty).tobytes()] for tx, ty in zip(s.x, s.y, strict=True)}
        for name, s in (("train", whole.meta_train), ("val", whole.validation),
                        ("test", whole.test))
    }
    assert len(ids["train"]) == 64 and len(ids["val"]) == 64 and len(ids["test"]) == 256
    assert not ids["train"] & ids["val"]
    assert not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]


def test_meta_train_is_the_first_pixels_of_whole_images(data, whole):
    """num_points only truncates: the images, their pixel orders and the other splits stay."""
    np.testing.assert_array_equal(whole.meta_train.x[:, :16], data.meta_train.x)
    np.testing.assert_array_equal(whole.meta_train.y[:, :16], data.meta_train.y)
    np.testing.assert_array_equal(whole.test.y, data.test.y)


def test_pixel_order_is_random_per_task(data):
    for split in (data.meta_train, data.validation, data.test):
        first_rows = split.x[:, :8, 0]
        # Raster order would make the first 8 points the top row (row coordinate -1).
        assert not np.all(first_rows == -1.0)
        assert len({tuple(map(tuple, t[:8])) for t in split.x}) == split.x.shape[0]


def test_deterministic_and_seeded():
    a = families.make_meta_dataset("digits", num_tasks=4, num_validation_tasks=4, num_test_tasks=4)
    b = families.make_meta_dataset("digits", num_tasks=4, num_validation_tasks=4, num_test_tasks=4)
    c = families.make_meta_dataset(
        "digits", num_tasks=4, num_validation_tasks=4, num_test_tasks=4, seed_task=5
    )
    for sa, sb in zip(a.splits, b.splits, strict=True):
        np.testing.assert_array_equal(sa.y, sb.y)
    assert not np.array_equal(np.sort(a.test.y, axis=1), np.sort(c.test.y, axis=1))


def test_too_many_tasks():
    with pytest.raises(ValueError, match="1797"):
        families.make_meta_dataset("digits", num_tasks=1500, num_test_tasks=256)
    with pytest.raises(ValueError, match="64 pixels"):
        families.make_meta_dataset("digits", num_points=65, num_test_points=65)
