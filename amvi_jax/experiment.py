"""One experiment, any method: `train_and_evaluate(config, workdir)`.

    config.method -> methods.REGISTRY -> Setup(model, state, step, validation, evaluation, ...)
    resume or warm-start -> training.loop.run_loop -> best checkpoint -> eval.json + figures

`restore(workdir)` brings back the model and best parameters of a finished run of any method
(the benchmark runner, the reference and warm starts use it).
"""

import os
from typing import NamedTuple

import jax
from absl import logging

from amvi_jax import (
    checkpoint,
    checks,
    configuration,
    data,
    evaluate,
    methods,
    plotting,
    sharding,
)
from amvi_jax import model as model_lib
from amvi_jax import workdir as workdir_lib
from amvi_jax.methods.base import Evaluation, Setup
from amvi_jax.training import loop
from amvi_jax.training.state import TrainState


class Run(NamedTuple):
    """What `train` hands to evaluation."""

    setup: Setup
    state: TrainState
    dataset: data.MetaDataset
    checkpoints: checkpoint.Checkpoints
    mesh: jax.sharding.Mesh

    @property
    def model(self):
        return self.setup.model


def train(config, workdir: str, stop_after: int | None = None) -> Run:
    """Trains (or resumes) the run in `workdir`; `stop_after` simulates a preemption."""
    configuration.validate(config)
    mesh = sharding.make_mesh(config.num_devices)
    sharding.check_divisible(config.train.batch_size, mesh, "train.batch_size")
    sharding.check_divisible(config.eval.task_chunk, mesh, "eval.task_chunk")
    main_process = sharding.is_main_process()
    os.makedirs(workdir, exist_ok=True)
    dataset = workdir_lib.load_data(config)
    configuration.validate_against_data(config, dataset)
    setup = methods.REGISTRY[config.method].setup(config, dataset, mesh)

    ckpts = checkpoint.Checkpoints(workdir)
    state, restored = loop.resume(ckpts, setup.state, workdir)
    time_offset = 0.0
    if not restored and setup.warm_start is not None:
        state = setup.warm_start(state)
        # time_s continues from the run it starts from: a warm-started diffusion's curve
        # against wall time includes the Gaussian stage it needed.
        time_offset = workdir_lib.last_time_s(
            os.path.join(config.train.init_from, "metrics.jsonl"))
    state = jax.device_put(state, sharding.replicated(mesh))
    if main_process:
        workdir_lib.write_config(workdir, config)
    state = loop.run_loop(config, workdir, state, ckpts, setup.step, setup.validation,
                          stop_after=stop_after, log_keys=setup.log_keys,
                          main_process=main_process, time_offset=time_offset,
                          steps_fn=setup.steps)
    return Run(setup, state, dataset, ckpts, mesh)


def final_evaluation(config, workdir: str, run: Run) -> dict:
    """Test-split evaluation of the best checkpoint; writes eval.json and the figures."""
    state = run.checkpoints.restore_best(run.state) or run.state
    summary = evaluate_params(config, workdir, run.setup.evaluation, state.params,
                              int(state.step), run.dataset, run.mesh)
    if sharding.is_main_process():
        plotting.plot_validation_vs_time(os.path.join(workdir, "metrics.jsonl"),
                                         os.path.join(workdir, "validation_vs_time.png"))
    return summary


def evaluate_params(config, out_dir: str, evaluation: Evaluation, params,
                    checkpoint_step: int, dataset: data.MetaDataset, mesh=None) -> dict:
    """The test split under `config.eval` (docs/DESIGN.md section 5) for `params`: the
    protocol's metrics, the Bayes limit where the benchmark has one, the NP literature's
    per-pixel metrics on images, the test time; writes out_dir/eval.json and the figures."""
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 10**6)
    test, ev = dataset.test, config.eval
    model = evaluation.model
    summary = evaluate.evaluate(model, params, key, test, ev.context_sizes,
                                ev.num_particles, ev.task_chunk, mesh=mesh,
                                context_width=evaluation.context_width)
    summary = evaluate.with_oracle(summary, evaluate.oracle_summary(
        config.data.benchmark, config.data.noise_std, test, ev.context_sizes))
    if dataset.image_shape is not None and ev.literature_points:
        if test.x.shape[1] >= ev.literature_points:
            summary["literature"] = evaluate.literature(
                model, params, jax.random.fold_in(key, 2), test, ev.num_particles,
                ev.task_chunk, max_points=ev.literature_points)
        else:
            summary["literature"] = (f"none: test tasks have {test.x.shape[1]} points, fewer "
                                     f"than eval.literature_points={ev.literature_points}")
    # For GMM-NP `sample` fits the fresh mixture first, so the fit is part of the cost; with a
    # test-time dial (eval.refine_temperatures) the refinement is.
    summary["test_time"] = evaluate.measure_test_time(
        model, params, key, test, max(ev.context_sizes), ev.num_particles, ev.task_chunk)
    summary.update(checkpoint_step=checkpoint_step, benchmark=dataset.name,
                   method=config.method, **evaluation.describe)
    if sharding.is_main_process():
        os.makedirs(out_dir, exist_ok=True)
        workdir_lib.write_json(os.path.join(out_dir, "eval.json"), summary)
        schedules = evaluation.schedules(params) if evaluation.schedules else None
        plotting.plot_run(model, params, jax.random.fold_in(key, 1), test, config,
                          out_dir, schedules, dataset.image_shape)
    return summary


def reevaluate(workdir: str, eval_overrides: dict, out_dir: str) -> dict:
    """The best checkpoint of the finished run in `workdir` under another evaluation protocol,
    without training: its own config with `eval_overrides` ({"num_particles": 4096, ...}, fields
    of the `eval` section) applied; eval.json and figures go to `out_dir`."""
    config = workdir_lib.read_config(workdir)
    unknown = sorted(set(eval_overrides) - set(config.eval))
    if unknown:
        checks.fail(f"eval.{unknown[0]}", eval_overrides[unknown[0]],
                    f"not an evaluation field; valid: {', '.join(sorted(config.eval))}")
    config.eval.update(eval_overrides)
    configuration.validate(config)
    restored = restore(workdir, config)
    configuration.validate_against_data(config, restored.dataset)
    summary = evaluate_params(config, out_dir, restored.evaluation, restored.params,
                              restored.step, restored.dataset)
    logging.info("re-evaluated %s (step %d) -> %s", workdir, restored.step,
                 os.path.join(out_dir, "eval.json"))
    return summary


def train_and_evaluate(config, workdir: str) -> dict:
    """The whole experiment: train (resuming if possible), then evaluate the best checkpoint."""
    run = train(config, workdir)
    try:
        summary = final_evaluation(config, workdir, run)
    finally:
        run.checkpoints.close()
    avg = summary["average"]
    logging.info("test: lmlhd_snis %.3f  lmlhd_mc %.3f  elbo %.3f  mse %.4f  (avg over n); "
                 "%.4f s per new task", avg["lmlhd_snis_median"], avg["lmlhd_mc_median"],
                 avg["elbo_median"], avg["mse_median"], summary["test_time"]["per_task_s"])
    lit = summary.get("literature")
    if isinstance(lit, dict):
        logging.info("image completion, the NP literature's protocol: context %.3f, target %.3f "
                     "per pixel", lit["ctx_ll"], lit["tar_ll"])
    if "lmlhd_oracle_median" in avg:
        logging.info("Bayes limit: lmlhd %.3f, the method %.3f nats below it (avg over n)",
                     avg["lmlhd_oracle_median"], avg["gap_to_oracle"])
    return summary


class Restored(NamedTuple):
    config: object  # ml_collections.ConfigDict
    model: object  # model.Model, as trained
    params: dict
    dataset: data.MetaDataset
    evaluation: Evaluation
    step: int = 0  # the restored checkpoint's step


def restore(workdir: str, config=None) -> Restored:
    """Config, model, best (else last) params and dataset of a finished run of any method
    (`config`: the run's own with other evaluation fields, see `reevaluate`).

    Builds what evaluation needs and reads only the parameters: no train state, optimiser
    state or GMM-NP meta-training mixtures, no compiled step.
    """
    config = workdir_lib.read_config(workdir) if config is None else config
    config.train.init_from = ""  # already consumed: the checkpoint holds the result
    dataset = workdir_lib.load_data(config)
    evaluation = methods.REGISTRY[config.method].evaluation(config, dataset)
    params, step = checkpoint.restore_params_from(workdir, model_lib.param_shapes(
        evaluation.trained, dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]))
    return Restored(config, evaluation.trained, params, dataset, evaluation, int(step))
