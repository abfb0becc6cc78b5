"""Time to quality: wall seconds until a run's validation first reaches a fixed level.

    python -m experiments.time_to_quality --output_dir=runs/ttq --variants=before,after

Every variant is configs/np.py with a few fields changed (`VARIANTS`), trained on the same
data (linesine1d, 1024 tasks x 16 points, output noise 0.1, 64 validation tasks) under the
same wall-clock budget, one after the other in this process, so the ratio of their times
compares them on the same machine at the same hour. `--rounds` > 1 alternates the variants
again (fresh run directories) to see the spread. Validation logs median lmlhd_snis averaged
over the context sizes against `time_s` (training time: validation itself is left out); a
variant's time to quality is the first logged time at or above `--target`.

Writes <output_dir>/time_to_quality.{md,json,png}.
"""

import time

from absl import app, flags, logging

from experiments.main import DropOrbax
from experiments.measure import quality

_OUT = flags.DEFINE_string("output_dir", "runs/ttq", "Where runs and the report go.")
_VARIANTS = flags.DEFINE_list("variants", ["before", "after"],
                              f"Variants to compare, of: {', '.join(quality.VARIANTS)}.")
_TARGET = flags.DEFINE_float("target", -20.0, "The validation level (median lmlhd_snis, "
                             "averaged over context sizes) whose first crossing is timed.")
_BUDGET = flags.DEFINE_float("budget_s", 600.0, "Wall-clock budget of every run (seconds).")
_VALIDATE = flags.DEFINE_integer("validate_every", 500, "Validation interval in steps.")
_ROUNDS = flags.DEFINE_integer("rounds", 1, "Times every variant runs (alternating).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the model (the data is fixed).")


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(DropOrbax())
    start = time.perf_counter()
    runs = quality.run(_OUT.value, _VARIANTS.value, budget_s=_BUDGET.value,
                       validate_every=_VALIDATE.value, rounds=_ROUNDS.value, seed=_SEED.value,
                       target=_TARGET.value)
    print(quality.report(runs, _TARGET.value))
    print(f"wall time {time.perf_counter() - start:.0f} s; results in {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
