"""On-disk cache of generated benchmarks: a tensorflow_datasets builder writing array_record.

One example = one task {"x": [N, d_x], "y": [N, d_y]}; splits "meta_train",
"validation", "test" (in task order: shuffling is disabled). Reading uses
``builder.as_data_source()``, which needs no TensorFlow.

The generation parameters live in ``MetaDatasetConfig``; its name is
``<family>_<hash of the parameters>``, so each parameter set is generated once per data dir and
reused afterwards. Data dir: the ``data_dir`` argument, else $AMVI_DATA_DIR, else
~/.cache/amvi_jax/tfds. Files: <data_dir>/amvi_meta_dataset/<config name>/<version>/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from amvi_jax.data import families
from amvi_jax.data.tasks import MetaDataset, TaskSet

# Part of the cache key: bump when the generators change, so stale caches are not reused.
GENERATOR_VERSION = 1
SPLITS = ("meta_train", "validation", "test")
DATA_DIR_ENV = "AMVI_DATA_DIR"
_DIMS = {"digits": (2, 1)}  # (d_x, d_y); every synthetic family is (1, 1)
_log = logging.getLogger(__name__)


def default_data_dir() -> str:
    """$AMVI_DATA_DIR if set, else ~/.cache/amvi_jax/tfds (read at call time, not import)."""
    return os.environ.get(DATA_DIR_ENV) or os.path.join(
        os.path.expanduser("~"), ".cache", "amvi_jax", "tfds"
    )


@dataclasses.dataclass
class MetaDatasetConfig(tfds.core.BuilderConfig):
    """Generation parameters of one benchmark; build with ``MetaDatasetConfig.create``."""

    family: str = "sinusoid1d"
    num_tasks: int = 64
    num_points: int = 16
    num_test_points: int = 64
    num_validation_tasks: int = 64
    num_test_tasks: int = 256
    noise_std: float = 0.25
    seed_task: int = 0
    seed_x: int = 1
    seed_noise: int = 2

    @classmethod
    def create(cls, family: str, **params) -> MetaDatasetConfig:
        """Config whose name is ``<family>_<10-hex hash of all generation parameters>``."""
        if family == "digits":
            # Unused by digits: normalised so they do not split the cache.
            params.update(noise_std=0.0, seed_noise=0)
        fields = {f.name: f.default for f in _generation_fields(cls)}
        unknown = set(params) - set(fields)
        if unknown:
            raise ValueError(f"Unknown generation parameters {sorted(unknown)}.")
        values = {**fields, **params, "family": family}
        for key, value in values.items():  # plain Python types: stable JSON and hash
            kind = type(fields[key])
            if kind is int and (isinstance(value, bool) or int(value) != value):
                raise ValueError(f"{key} must be an integer, got {value!r}.")
            values[key] = kind(value)
        # Checked here, before any cache directory exists for an invalid parameter set.
        families.check_parameters(**values)
        key = json.dumps({**values, "generator_version": GENERATOR_VERSION}, sort_keys=True)
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        return cls(name=f"{family}_{digest}", description=key, **values)

    def generation_kwargs(self) -> dict:
        """The arguments of ``families.make_meta_dataset``."""
        return {f.name: getattr(self, f.name) for f in _generation_fields(self)}


def _generation_fields(config) -> list[dataclasses.Field]:
    """The dataclass fields MetaDatasetConfig adds to tfds' BuilderConfig."""
    base = {f.name for f in dataclasses.fields(tfds.core.BuilderConfig)}
    return [f for f in dataclasses.fields(config) if f.name not in base]


class AmviMetaDataset(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Generated meta-datasets; one config per parameter set (see MetaDatasetConfig)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    # tfds looks up the defining file through importlib_resources (not installed here, and only
    # used to find a checksums file we do not have); a plain attribute skips that lookup.
    code_path = epath.Path(__file__)

    def _info(self) -> tfds.core.DatasetInfo:
        d_x, d_y = _DIMS.get(self.builder_config.family, (1, 1))
        return tfds.core.DatasetInfo(
            builder=self,
            description="amvi_jax meta-learning benchmark; one example is one task.",
            features=tfds.features.FeaturesDict(
                {
                    # N differs between splits (meta_train vs the others), hence None.
                    "x": tfds.features.Tensor(shape=(None, d_x), dtype=np.float32),
                    "y": tfds.features.Tensor(shape=(None, d_y), dtype=np.float32),
                }
            ),
            disable_shuffling=True,  # keep task order: example i is task i
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # everything is generated locally
        data = families.make_meta_dataset(**self.builder_config.generation_kwargs())
        return {split: self._generate_examples(getattr(data, split)) for split in SPLITS}

    def _generate_examples(self, task_set: TaskSet):
        for i in range(task_set.num_tasks):
            yield i, {"x": task_set.x[i], "y": task_set.y[i]}

    # tfds prints "Downloading and preparing dataset ..." to stdout; nothing is downloaded
    # here, so say what happens through logging instead.
    def _log_download_bytes(self) -> None:
        _log.info("Generating %s into %s", self.builder_config.name, self.data_dir)

    def _log_download_done(self) -> None:
        _log.info("Generated %s", self.builder_config.name)


class _DropCustomConfigWarning(logging.Filter):
    # tfds warns "Using custom data configuration" for every config not declared in the class;
    # ours are all custom by design, so the warning is noise.
    def filter(self, record: logging.LogRecord) -> bool:
        return "Using custom data configuration" not in record.getMessage()


@contextlib.contextmanager
def _file_lock(path: str):
    """Exclusive inter-process lock, so concurrent runs do not generate the same config twice."""
    try:
        import fcntl
    except ImportError:  # non-POSIX: no locking, tfds' atomic rename still protects the data
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_builder(config: MetaDatasetConfig, data_dir: str | None = None) -> AmviMetaDataset:
    """The builder for ``config`` (not prepared yet)."""
    absl_logger = logging.getLogger("absl")
    log_filter = _DropCustomConfigWarning()
    absl_logger.addFilter(log_filter)
    try:
        return AmviMetaDataset(
            data_dir=data_dir or default_data_dir(), config=config, file_format="array_record"
        )
    finally:
        absl_logger.removeFilter(log_filter)


def prepare(config: MetaDatasetConfig, data_dir: str | None = None) -> AmviMetaDataset:
    """Generates the config's files unless they already exist; returns the prepared builder."""
    tfds.disable_progress_bar()
    data_dir = data_dir or default_data_dir()
    lock_dir = os.path.join(data_dir, AmviMetaDataset.name)
    os.makedirs(lock_dir, exist_ok=True)
    with _file_lock(os.path.join(lock_dir, f"{config.name}.lock")):
        # Built under the lock: a builder made before another process finished would not see
        # its dataset_info.json and would try to generate again.
        builder = make_builder(config, data_dir)
        builder.download_and_prepare(download_dir=os.path.join(lock_dir, "downloads"))
    return builder


def load_generated(config: MetaDatasetConfig, data_dir: str | None = None) -> MetaDataset:
    """Loads (generating and caching on first use) the meta-dataset described by ``config``."""
    builder = prepare(config, data_dir)
    sources = builder.as_data_source()
    task_sets = {}
    for split in SPLITS:
        source = sources[split]
        records = source.__getitems__(range(len(source)))
        task_sets[split] = TaskSet(
            x=np.stack([r["x"] for r in records]).astype(np.float32),
            y=np.stack([r["y"] for r in records]).astype(np.float32),
        )
    return MetaDataset(name=config.family, **task_sets,
                       image_shape=families.IMAGE_SHAPES.get(config.family))
