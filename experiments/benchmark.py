"""The benchmark table: `python -m experiments.benchmark --methods=np,ldvi --seeds=0,1,2`.

Writes results.json, results.md and figures to --output_dir; finished cells are reused.
"""

import time

from absl import app, flags, logging

from amvi_jax import benchmark
from experiments.main import _DropOrbax

_OUT = flags.DEFINE_string("output_dir", "runs/benchmark", "Where cells and results go.")
_METHODS = flags.DEFINE_list("methods", ["np", "ldvi"],
                             f"Methods, from: {', '.join(benchmark.METHODS)}.")
_BENCHMARKS = flags.DEFINE_list("benchmarks", ["sinusoid1d"],
                                "Benchmark names or paths to .npz task files.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (>= 3 for standard errors).")
_SWEEP_SEEDS = flags.DEFINE_list("sweep_seeds", None,
                                  "Seeds that also run the K sweep (default: the first seed).")
_PRESET = flags.DEFINE_enum("preset", "cpu", list(benchmark.PRESETS),
                            "Budget: tiny (smoke test), cpu (2 cores), paper (accelerators).")
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
    logging.get_absl_handler().addFilter(_DropOrbax())
    start = time.perf_counter()
    if _COLLECT.value:
        results = benchmark.collect(_OUT.value, _PRESET.value, model_like=_MODEL_LIKE.value)
    else:
        results = benchmark.run(_OUT.value, _METHODS.value, _BENCHMARKS.value,
                                [int(s) for s in _SEEDS.value], _PRESET.value,
                                sweep_methods=tuple(_SWEEP.value),
                                sweep_seeds=None if _SWEEP_SEEDS.value is None
                                else [int(s) for s in _SWEEP_SEEDS.value],
                                model_like=_MODEL_LIKE.value,
                                overrides=benchmark.parse_overrides(_SET.value))
    print(benchmark.markdown_table(results["rows"]))
    print(f"wall time {time.perf_counter() - start:.0f} s; results in {_OUT.value}")


if __name__ == "__main__":
    app.run(main)
