"""Prepares a tensorflow-datasets image dataset for `data.benchmark=tfds:<name>`, once, on a
machine with internet access:

    python -m experiments.prepare_tfds --dataset=mnist [--data_dir=~/tensorflow_datasets]

It downloads the dataset and writes array_record files, the format `tfds.data_source` reads
without TensorFlow; copy the data dir to machines without internet access. (Some datasets'
preparation code needs TensorFlow: `pip install tensorflow` on the preparing machine then.)
"""

from absl import app, flags

_DATASET = flags.DEFINE_string("dataset", None, "tfds name, e.g. mnist, fashion_mnist, emnist, "
                               "celeb_a.", required=True)
_DATA_DIR = flags.DEFINE_string("data_dir", None, "tfds data dir (default: $TFDS_DATA_DIR or "
                                "~/tensorflow_datasets).")


def main(argv):
    del argv
    import tensorflow_datasets as tfds

    from amvi_jax.data import images

    images.image_feature(_DATASET.value, _DATA_DIR.value)  # unknown or non-image: fail early
    builder = tfds.builder(_DATASET.value, data_dir=_DATA_DIR.value, file_format="array_record")
    builder.download_and_prepare()
    print(f"prepared {_DATASET.value} in {builder.data_dir}")


if __name__ == "__main__":
    app.run(main)
