"""Performance report: `python -m experiments.perf [--quick] [--output=docs/PERFORMANCE.md]`.

Measures, in one process (experiments/measure), and prints as Markdown tables (also written
between the generated markers of --output, so hand-written analysis around them survives):

1. sampler overhead: a jitted K-step `sampler.run` over a batch of tasks, divided by K times ONE
   batched evaluation of the target score (the floor of a Langevin sampler); forward only;
2. training throughput of the default LDVI config against K (and the Gaussian K = 0 step);
3. peak memory of the training step against K, remat on and off (XLA's static memory analysis);
4. compile time (lower + compile) of the training step against K;
5. evaluation throughput: test tasks per second with 1024 particles (as `measure_test_time`).
6. the np and GMM-NP training steps against the number of meta-training tasks T.

The persistent compilation cache is switched off so compile times are real.
"""

import dataclasses
import os
import sys

import jax
from absl import app, flags

from experiments.measure import report, suite, timing

_QUICK = flags.DEFINE_bool("quick", False, "Seconds-long smoke run with tiny shapes.")
_ACCEL = flags.DEFINE_bool("accel", False, "Accelerator-sized shapes (timing.ACCEL: 256 tasks "
                           "per training step and per evaluation chunk); make bench-accel.")
_OUTPUT = flags.DEFINE_string("output", "docs/PERFORMANCE.md",
                              "Markdown file for the report ('' = print only). With --quick "
                              "the report is only printed unless --output is given.")
_REPEATS = flags.DEFINE_integer("repeats", None, "Timed runs per measurement (default 7; "
                                "--quick: 2). Each is preceded by one warm-up run.")


def _command(argv) -> str:
    """The command line as run, with the interpreter relative to the working directory."""
    python = sys.executable
    rel = os.path.relpath(python)
    if not rel.startswith(".."):
        python = rel if rel.startswith(".") else os.path.join(".", rel)
    return " ".join([python, "-m", "experiments.perf", *argv[1:]])


def main(argv):
    del argv  # absl strips the flags; the command is rebuilt from sys.argv
    # Compile times must be real compilations, not hits of a persistent cache.
    jax.config.update("jax_enable_compilation_cache", False)
    if _QUICK.value and _ACCEL.value:
        raise app.UsageError("--quick and --accel exclude each other")
    settings = (timing.QUICK if _QUICK.value else timing.ACCEL if _ACCEL.value
                else timing.FULL)
    if _REPEATS.value is not None:
        if _REPEATS.value < 1:
            raise app.UsageError("--repeats must be >= 1")
        settings = dataclasses.replace(settings, repeats=_REPEATS.value)
    log = lambda msg: print(f"[perf] {msg}", flush=True)
    block = report.render(suite.run(settings, log), _command(sys.argv))
    print(block)
    if _OUTPUT.value and (flags.FLAGS["output"].present or not _QUICK.value):
        report.write_report(_OUTPUT.value, block)
        log(f"written to {_OUTPUT.value}")


if __name__ == "__main__":
    app.run(main)
