"""tfds/array_record cache and load_benchmark."""

import os
import threading
import types

import ml_collections
import numpy as np
import pytest

from amvi_jax import data as amvi_data
from amvi_jax.data import BENCHMARKS, builder, families, load_benchmark


def small_config(data_dir, **overrides):
    cfg = amvi_data.default_data_config()
    cfg.data_dir = str(data_dir)
    cfg.update({"num_tasks": 6, "num_validation_tasks": 5, "num_test_tasks": 7, **overrides})
    return cfg


def split_files(data_dir):
    return sorted(
        os.path.join(root, f)
        for root, _, files in os.walk(data_dir)
        for f in files
        if ".array_record" in f
    )


def test_default_data_config():
    cfg = amvi_data.default_data_config()
    assert isinstance(cfg, ml_collections.ConfigDict)
    assert cfg.benchmark == "sinusoid1d" and cfg.num_tasks == 64 and cfg.num_points == 16
    assert cfg.num_test_points == 64 and cfg.num_validation_tasks == 64
    assert cfg.num_test_tasks == 256 and cfg.noise_std == 0.25
    assert (cfg.seed_task, cfg.seed_x, cfg.seed_noise) == (0, 1, 2)
    assert cfg.data_dir is None and cfg.holdout_fraction == 0.25
    cfg.data_dir = "/somewhere"  # None fields must accept a path


def test_default_shapes(tmp_path):
    cfg = amvi_data.default_data_config()
    cfg.data_dir = str(tmp_path)
    data = load_benchmark(cfg)
    assert isinstance(data, amvi_data.MetaDataset) and data.name == "sinusoid1d"
    assert data.meta_train.x.shape == (64, 16, 1) and data.meta_train.y.shape == (64, 16, 1)
    assert data.validation.x.shape == (64, 64, 1)
    assert data.test.x.shape == (256, 64, 1) and data.test.y.shape == (256, 64, 1)
    for split in data.splits:
        assert split.x.dtype == np.float32 and split.y.dtype == np.float32
    # New tasks: no test or validation input set shares a point set with a meta-training one.
    train_x = {t.tobytes() for t in data.meta_train.x}
    assert not train_x & {t[:16].tobytes() for t in data.test.x}
    assert not train_x & {t[:16].tobytes() for t in data.validation.x}
    assert not np.allclose(data.test.y[:64, :16], data.meta_train.y)


def test_array_record_round_trip(tmp_path):
    cfg = small_config(tmp_path, benchmark="gp_matern52", num_points=5, num_test_points=9)
    data = load_benchmark(cfg)
    files = split_files(tmp_path)
    assert len(files) == 3  # meta_train, validation, test
    # <name>-<split>.array_record-00000-of-00001
    names = {os.path.basename(f).split("-")[1].removesuffix(".array_record") for f in files}
    assert names == set(builder.SPLITS)
    direct = families.make_meta_dataset(
        "gp_matern52",
        num_tasks=6,
        num_points=5,
        num_test_points=9,
        num_validation_tasks=5,
        num_test_tasks=7,
    )
    for loaded, expected in zip(data.splits, direct.splits, strict=True):
        np.testing.assert_array_equal(loaded.x, expected.x)
        np.testing.assert_array_equal(loaded.y, expected.y)


def test_second_load_reuses_cache(tmp_path, monkeypatch):
    cfg = small_config(tmp_path)
    first = load_benchmark(cfg)
    mtimes = {f: os.stat(f).st_mtime_ns for f in split_files(tmp_path)}

    def fail(**kwargs):
        raise AssertionError("regenerated a cached benchmark")

    monkeypatch.setattr(families, "make_meta_dataset", fail)
    second = load_benchmark(cfg)
    assert {f: os.stat(f).st_mtime_ns for f in split_files(tmp_path)} == mtimes
    for a, b in zip(first.splits, second.splits, strict=True):
        np.testing.assert_array_equal(a.y, b.y)

    # Different parameters are a different cache entry, so they do generate.
    cfg.noise_std = 0.1
    with pytest.raises(AssertionError, match="regenerated"):
        load_benchmark(cfg)


def test_config_name_encodes_family_and_parameters():
    a = builder.MetaDatasetConfig.create("gp_rbf", num_tasks=8)
    b = builder.MetaDatasetConfig.create("gp_rbf", num_tasks=np.int64(8))
    c = builder.MetaDatasetConfig.create("gp_rbf", num_tasks=9)
    assert a.name.startswith("gp_rbf_") and a.name == b.name != c.name
    assert builder.MetaDatasetConfig.create("gp_rbf", seed_noise=3).name != a.name
    # Digits ignores the noise parameters, so they do not split its cache.
    assert (
        builder.MetaDatasetConfig.create("digits", noise_std=0.1).name
        == builder.MetaDatasetConfig.create("digits").name
    )
    with pytest.raises(ValueError, match="integer"):
        builder.MetaDatasetConfig.create("gp_rbf", num_tasks=8.5)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", str(tmp_path))
    cfg = small_config(tmp_path)
    cfg.data_dir = None
    load_benchmark(cfg)
    assert len(split_files(tmp_path)) == 3


def test_concurrent_loads_of_one_config(tmp_path):
    cfg = small_config(tmp_path, benchmark="affine1d")
    results, errors = [], []

    def load():
        try:
            results.append(load_benchmark(cfg))
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for other in results[1:]:
        np.testing.assert_array_equal(other.test.y, results[0].test.y)
    assert len(split_files(tmp_path)) == 3


def test_any_object_with_attributes(tmp_path):
    cfg = types.SimpleNamespace(
        benchmark="digits",
        data_dir=str(tmp_path),
        num_tasks=3,
        num_validation_tasks=2,
        num_test_tasks=2,
    )
    data = load_benchmark(cfg)
    assert data.meta_train.x.shape == (3, 16, 2) and data.test.y.shape == (2, 64, 1)


def test_unknown_benchmark_lists_valid_names(tmp_path):
    with pytest.raises(ValueError, match="Unknown benchmark 'sinusoid'") as info:
        load_benchmark(small_config(tmp_path, benchmark="sinusoid"))
    for name in BENCHMARKS:
        assert name in str(info.value)
    assert len(BENCHMARKS) == 8 and isinstance(BENCHMARKS, tuple)


@pytest.mark.parametrize(
    "overrides, match",
    [
        (dict(num_tasks=0), "num_tasks must be a positive integer"),
        (dict(seed_x=-1), "seed_x must be a non-negative integer"),
        (dict(noise_std=-0.1), "noise_std must be >= 0"),
        (dict(benchmark="digits", num_points=65), "64 pixels"),
        (dict(benchmark="digits", num_tasks=1790), "1797 images"),
    ],
)
def test_invalid_parameters_fail_before_touching_the_cache(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        load_benchmark(small_config(tmp_path / "cache", **overrides))
    assert not (tmp_path / "cache").exists()
