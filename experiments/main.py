"""Train and evaluate one configuration, or re-evaluate a finished run:

    python -m experiments.main --config=configs/ldvi.py [--workdir=runs/ldvi]
    python -m experiments.main --mode=evaluate --workdir=runs/ldvi \
        --eval=num_particles=4096 --eval=context_sizes="(0,1,2,4,8,16,32)" [--eval_output=...]

`--mode=evaluate` trains nothing: the run's best checkpoint under its own config.json, with the
given fields of its `eval` section changed (more particles, other context sizes, the test-time
dial `refine_temperatures`, ...); eval.json and the figures go to <workdir>/<eval_output> (default:
evaluations/<the changed fields>), so the run's own eval.json stays as it was. `--config` is
not read in that mode.
"""

import logging as std_logging
import os

from absl import app, flags, logging
from ml_collections import config_flags

from amvi_jax import experiment, sharding
from experiments.runner import cells

_CONFIG = config_flags.DEFINE_config_file("config", "configs/np.py", "Experiment config file.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory (default: runs/<config name>).")
_MODE = flags.DEFINE_enum("mode", "train", ["train", "evaluate"],
                          "train: train (or resume) and evaluate; evaluate: re-evaluate the "
                          "finished run in --workdir.")
_EVAL = flags.DEFINE_multi_string(
    "eval", [], "--mode=evaluate: field=value of the run's `eval` section, e.g. "
    "--eval=num_particles=4096; repeat it.")
_OUTPUT = flags.DEFINE_string(
    "eval_output", "", "--mode=evaluate: subdirectory of --workdir for the results (default: "
    "evaluations/<changed fields>).")


class DropOrbax(std_logging.Filter):
    """Orbax logs every save at INFO through absl; keep the run's own progress readable."""

    def filter(self, record):
        return "orbax" not in record.pathname


def output_name(overrides: dict) -> str:
    """A folder for a re-evaluation, named by its changed fields (or `as_trained`)."""
    if not overrides:
        return os.path.join("evaluations", "as_trained")
    parts = [f"{k}={v}".replace(" ", "").replace("/", "_") for k, v in sorted(overrides.items())]
    return os.path.join("evaluations", ",".join(parts))


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(DropOrbax())
    if _MODE.value == "evaluate":
        if not _WORKDIR.value:
            raise app.UsageError("--mode=evaluate needs --workdir=<a finished run>")
        overrides = cells.parse_overrides(_EVAL.value)
        out = os.path.join(_WORKDIR.value, _OUTPUT.value or output_name(overrides))
        summary = experiment.reevaluate(_WORKDIR.value, overrides, out)
        avg = summary["average"]
        limit = (f", {avg['gap_to_oracle']:.3f} below the Bayes limit"
                 if "gap_to_oracle" in avg else "")
        print(f"lmlhd_snis {avg['lmlhd_snis_median']:.3f} (avg over n){limit}; "
              f"{os.path.join(out, 'eval.json')}")
        return
    config = _CONFIG.value
    if config.distributed:
        sharding.initialize_distributed()
    workdir = _WORKDIR.value or os.path.join("runs", config.name)
    logging.info("workdir: %s", workdir)
    experiment.train_and_evaluate(config, workdir)


if __name__ == "__main__":
    app.run(main)
