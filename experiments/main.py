"""Train and evaluate one configuration: `python -m experiments.main --config=configs/ldvi.py`."""

import logging as std_logging
import os

from absl import app, flags, logging
from ml_collections import config_flags

from amvi_jax import experiment, sharding

_CONFIG = config_flags.DEFINE_config_file("config", "configs/np.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")


class DropOrbax(std_logging.Filter):
    """Orbax logs every save at INFO through absl; keep the run's own progress readable."""

    def filter(self, record):
        return "orbax" not in record.pathname


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(DropOrbax())
    config = _CONFIG.value
    if config.distributed:
        sharding.initialize_distributed()
    workdir = _WORKDIR.value or os.path.join("runs", config.name)
    logging.info("workdir: %s", workdir)
    experiment.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    app.run(main)
