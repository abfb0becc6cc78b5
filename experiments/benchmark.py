"""The benchmark table: `python -m experiments.benchmark --methods=np,ldvi --seeds=0,1,2`.

Writes results.json, results.md and figures to --output_dir; finished cells are reused. A
method is any config file under configs/ (`experiments.runner.cells.available_methods`).
"""

import time

from absl import app, flags, logging
from ml_collections import config_flags

from experiments import runner
from experiments.main import DropOrbax
from experiments.runner import cells, report

_OUT = flags.DEFINE_string("output_dir", "runs/benchmark", "Where cells and results go.")
_METHODS = flags.DEFINE_list("methods", ["np", "ldvi"],
                             "Methods (config names under configs/), e.g. np,ldvi,gmm.")
_BENCHMARKS = flags.DEFINE_list("benchmarks", ["sinusoid1d"],
                                "Benchmark names or paths to .npz task files.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (>= 3 for standard errors).")
_SWEEP_SEEDS = flags.DEFINE_list("sweep_seeds", None,
                                 "Seeds that also run the K sweep (default: the first seed).")
_PRESET = config_flags.DEFINE_config_file(
    "preset", "configs/presets.py:cpu", "Budgets: configs/presets.py:tiny|cpu|paper; any field "
    "can be overridden, e.g. --preset.steps.diffusion=2000.")
_MODEL_LIKE = flags.DEFINE_string(
    "model_like", "", "Give every method the decoder and latent of this method's config "
    "(e.g. gmm: GMM-NP's d_z = 3, tanh 8-8 decoder); empty: each method's own.")
_SET = flags.DEFINE_multi_string(
    "set", [], "field.path=value applied to every cell config that has the field, e.g. "
    "--set=sampler.stop_grad_score=True (use a separate --output_dir).")
_COLLECT = flags.DEFINE_bool(
    "collect", False, "Train nothing: build the table and figures from every finished cell "
    "in --output_dir (e.g. after runs with different --methods or --seeds).")
_SWEEP = flags.DEFINE_list("sweep_methods", ["ldvi"],
                           "Diffusions whose ELBO gap is also measured for every K of the "
                           "preset's sweep (empty: none).")


def main(argv):
    del argv
    logging.get_absl_handler().addFilter(DropOrbax())
    start = time.perf_counter()
    preset = _PRESET.value
    if _COLLECT.value:
        results = runner.collect(_OUT.value, preset, model_like=_MODEL_LIKE.value)
    else:
        results = runner.run(_OUT.value, _METHODS.value, _BENCHMARKS.value,
                             [int(s) for s in _SEEDS.value], preset,
                             sweep_methods=tuple(_SWEEP.value),
                             sweep_seeds=None if _SWEEP_SEEDS.value is None
                             else [int(s) for s in _SWEEP_SEEDS.value],
                             model_like=_MODEL_LIKE.value,
                             overrides=cells.parse_overrides(_SET.value))
    print(report.markdown_table(results["rows"]))
    print(f"wall time {time.perf_counter() - start:.0f} s; results in {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
