"""Marginal-likelihood meta-training (DESIGN section 4) and the end-to-end run.

One jitted step (state, base_key, x, y) -> (state, metrics): it draws a batch of tasks and S
context subsets per task from `fold_in(base_key, step)`, so a resumed run repeats exactly; the
sampler is vmapped over tasks and subsets and itself vmaps over particles; Adam with global-norm
clipping updates encoder, decoder and sampler together.
"""

import json
import os
import time
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from jax.scipy.special import logsumexp

from amvi_jax import checkpoint, configuration, data, evaluate, plotting, samplers, sharding
from amvi_jax import model as model_lib


class TrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: dict
    opt_state: optax.OptState
    bad_step: jax.Array  # int32 []: first step with a non-finite loss or gradient, else -1


def make_optimizer(config) -> optax.GradientTransformation:
    """Adam with global-norm clipping; the rate drops to `diffusion_learning_rate` once the
    diffusion stage starts (its pathwise gradients through K steps are noisier)."""
    tc = config.train
    if config.sampler.name == "gaussian":
        rate = tc.learning_rate
    elif tc.pretrain_steps == 0:
        rate = tc.diffusion_learning_rate
    else:  # optax applies the scale from update count `pretrain_steps` on
        rate = optax.piecewise_constant_schedule(
            tc.learning_rate, {tc.pretrain_steps: tc.diffusion_learning_rate / tc.learning_rate})
    return optax.chain(optax.clip_by_global_norm(tc.grad_clip_norm), optax.adam(rate))


def init_state(model, optimizer, key, dim_x: int, dim_y: int) -> TrainState:
    params = model.init(key, dim_x, dim_y)
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params),
                      jnp.full((), -1, jnp.int32))


def batch_elbo(model, params, key, batch: data.TrainBatch, num_particles: int, sampler=None):
    """ELBO and log Z-hat of every (task, subset): batch mask [B, S, N] -> ([B, S], [B, S])."""
    num_tasks, num_subsets = batch.mask.shape[:2]
    keys = jax.random.split(key, num_tasks * num_subsets).reshape(num_tasks, num_subsets, -1)

    def one(k, x, y, mask):
        log_w = model.sample(params, k, x, y, mask, num_particles, sampler=sampler).log_w
        return jnp.mean(log_w), logsumexp(log_w) - jnp.log(num_particles)

    over_subsets = jax.vmap(one, in_axes=(0, None, None, 0))
    return jax.vmap(over_subsets)(keys, batch.x, batch.y, batch.mask)


def make_train_step(model, optimizer, config, sampler=None, mesh=None):
    """Jitted (state, base_key, x [T, N, d_x], y [T, N, d_y]) -> (state, metrics).

    `sampler` replaces the model's sampler (the Gaussian one during warm-start pre-training).
    With a `mesh`, the batch's task axis is split over its devices (params stay replicated).
    A non-finite loss or gradient leaves params and optimizer state untouched and records the
    step in `bad_step`; the host checks it before logging or saving.
    """
    tc = config.train

    def step_fn(state: TrainState, base_key, x, y):
        key_batch, key_model = jax.random.split(jax.random.fold_in(base_key, state.step))
        batch = data.sample_train_batch(key_batch, x, y, tc.batch_size, tc.num_subsets)
        if mesh is not None:
            batch = sharding.shard_tasks(batch, mesh)

        def loss_fn(params):
            elbo, log_z_hat = batch_elbo(model, params, key_model, batch, tc.num_particles,
                                         sampler)
            return -jnp.mean(elbo), jnp.mean(log_z_hat)

        (loss, log_z_hat), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grad_norm = optax.global_norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & (state.bad_step < 0)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        new_state = TrainState(
            step=state.step + 1,
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            bad_step=jnp.where(ok | (state.bad_step >= 0), state.bad_step, state.step),
        )
        metrics = dict(loss=loss, elbo=-loss, log_z_hat=log_z_hat, grad_norm=grad_norm)
        return new_state, metrics

    return jax.jit(step_fn, donate_argnums=0)


class Run(NamedTuple):
    """What `train` hands to evaluation."""

    model: model_lib.NeuralProcess
    state: TrainState
    dataset: data.MetaDataset
    checkpoints: checkpoint.Checkpoints
    mesh: jax.sharding.Mesh


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def trim_metrics(path: str, last_step: int) -> None:
    """Drops metric lines past the restored step, so a resumed run's log has no duplicates."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= last_step]
    with open(path, "w") as f:
        f.writelines(lines)


def load_data(config) -> data.MetaDataset:
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    if not data_config.data_dir:
        data_config.data_dir = None
    return data.load_benchmark(data_config)


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config.json a run wrote into its workdir."""
    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def restore_model(workdir: str, dim_x: int, dim_y: int):
    """(model, params) of the best (else last) checkpoint of an amortized run."""
    config = read_config(workdir)
    model = model_lib.from_config(config, dim_x, dim_y)
    template = init_state(model, make_optimizer(config), jax.random.PRNGKey(0), dim_x, dim_y)
    return model, checkpoint.restore_params_from(workdir, template).params


def _warm_start(config, model, state: TrainState, dim_x: int, dim_y: int) -> TrainState:
    """Encoder and decoder (and a compatible sampler) from another run's best checkpoint."""
    src = config.train.init_from
    _, src_params = restore_model(src, dim_x, dim_y)
    params = dict(state.params, encoder=src_params["encoder"], decoder=src_params["decoder"])
    same = jax.tree.structure(src_params["sampler"]) == jax.tree.structure(params["sampler"])
    if same:
        params["sampler"] = src_params["sampler"]
    logging.info("warm start from %s (encoder, decoder%s)", src, ", sampler" if same else "")
    optimizer = make_optimizer(config)
    return state._replace(params=params, opt_state=optimizer.init(params))


def resume(ckpts: checkpoint.Checkpoints, state, workdir: str):
    """(state, restored): the last checkpoint if there is one, else `state` unchanged.

    metrics.jsonl loses the lines past the restored step (all of them on a fresh start), so a
    resumed run's log has no duplicates.
    """
    restored = ckpts.restore_last(state)
    if restored is not None:
        logging.info("resumed from step %d", int(restored.step))
    trim_metrics(os.path.join(workdir, "metrics.jsonl"),
                 -1 if restored is None else int(restored.step))
    return (state, False) if restored is None else (restored, True)


def run_loop(config, workdir: str, state, ckpts: checkpoint.Checkpoints, step_fn, model,
             validation: data.TaskSet, val_metrics, val_key, *, validate_every: int,
             validate_after: int = 0, stop_after: int | None = None, log_keys=("loss", "elbo"),
             main_process: bool = True):
    """Steps `state` to config.train.num_steps (or `stop_after`): logs, validates, saves.

    step_fn(state, step) -> (state, metrics): one jitted step; the state has `step` and
    `bad_step` (first step whose update was not finite, else -1) and `params`. Metrics are
    averaged between log lines into workdir/metrics.jsonl. Every `validate_every` steps (0:
    never) after `validate_after`, the validation tasks' median lmlhd_snis (averaged over
    context sizes) picks the best checkpoint. A non-finite update stops the run with a
    FloatingPointError that names the step and the last good checkpoint, which is kept.
    """
    tc = config.train
    best_score = ckpts.best_score()
    start_step = int(state.step)
    end_step = tc.num_steps if stop_after is None else min(stop_after, tc.num_steps)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    t0, pending = time.perf_counter(), []
    with open(metrics_path if main_process else os.devnull, "a") as metrics_file:
        for step in range(start_step, end_step):
            state, metrics = step_fn(state, step)
            pending.append(metrics)
            done = step + 1
            log_now = done % tc.log_every == 0 or done == end_step
            val_now = (validate_every > 0 and done > validate_after
                       and (done % validate_every == 0 or done == tc.num_steps))
            save_now = done % tc.checkpoint_every == 0 or done == end_step
            if not (log_now or val_now or save_now):
                continue
            bad = int(state.bad_step)
            if bad >= 0:
                ckpts.wait()
                raise FloatingPointError(
                    f"non-finite loss, gradient or update at step {bad}; training stopped. The "
                    f"last good checkpoint (step {ckpts.last.latest_step()}) is kept in "
                    f"{os.path.join(workdir, 'checkpoints')}.")
            if log_now:
                mean = {k: float(np.mean([m[k] for m in pending])) for k in pending[0]}
                pending = []
                rate = (done - start_step) / (time.perf_counter() - t0)
                metrics_file.write(json.dumps(dict(step=done, steps_per_sec=rate, **mean)) + "\n")
                metrics_file.flush()
                logging.info("step %d/%d  %s  %.1f steps/s  ETA %.0f s", done, tc.num_steps,
                             "  ".join(f"{k} {mean[k]:.4g}" for k in log_keys), rate,
                             (tc.num_steps - done) / max(rate, 1e-9))
            if val_now:
                summary = evaluate.evaluate(
                    model, state.params, jax.random.fold_in(val_key, done), validation,
                    config.eval.context_sizes, config.eval.validation_particles,
                    config.eval.task_chunk, batch_metrics=val_metrics)
                score = summary["average"]["lmlhd_snis_median"]
                logging.info("step %d validation lmlhd_snis %.3f (best %.3f, %.0f s)", done,
                             score, best_score, summary["wall_time_s"])
                metrics_file.write(json.dumps(dict(step=done, val_lmlhd_snis=score)) + "\n")
                if score > best_score:
                    best_score = score
                    ckpts.save_best(done, state, score)
            if save_now:
                ckpts.save_last(done, state)
    ckpts.wait()
    return state


def train(config, workdir: str, stop_after: int | None = None) -> Run:
    """Trains (or resumes) the run in `workdir`; `stop_after` simulates a preemption."""
    configuration.validate(config)
    mesh = sharding.make_mesh(config.num_devices)
    sharding.check_divisible(config.train.batch_size, mesh, "train.batch_size")
    sharding.check_divisible(config.eval.task_chunk, mesh, "eval.task_chunk")
    main_process = sharding.is_main_process()
    os.makedirs(workdir, exist_ok=True)
    dataset = load_data(config)
    dim_x, dim_y = dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]
    model = model_lib.from_config(config, dim_x, dim_y)
    optimizer = make_optimizer(config)
    root_key = jax.random.PRNGKey(config.seed)
    key_init, key_train, key_val = jax.random.split(root_key, 3)
    state = init_state(model, optimizer, key_init, dim_x, dim_y)

    ckpts = checkpoint.Checkpoints(workdir)
    state, restored = resume(ckpts, state, workdir)
    if not restored and config.train.init_from:
        state = _warm_start(config, model, state, dim_x, dim_y)
    state = jax.device_put(state, sharding.replicated(mesh))
    if main_process:
        write_json(os.path.join(workdir, "config.json"),
                    json.loads(config.to_json_best_effort()))

    tc = config.train
    x_train, y_train = jax.device_put((dataset.meta_train.x, dataset.meta_train.y),
                                      sharding.replicated(mesh))
    diffusion_step = make_train_step(model, optimizer, config, mesh=mesh)
    pretrain_step = (make_train_step(model, optimizer, config, samplers.get("gaussian"), mesh)
                     if tc.pretrain_steps > 0 and model.sampler.name != "gaussian" else None)

    def step_fn(state, step):
        pretraining = pretrain_step is not None and step < tc.pretrain_steps
        return (pretrain_step if pretraining else diffusion_step)(state, key_train, x_train,
                                                                  y_train)

    # Validation scores the model's own sampler, so it starts with the diffusion stage.
    state = run_loop(config, workdir, state, ckpts, step_fn, model, dataset.validation,
                     evaluate.make_batch_metrics(model, config.eval.validation_particles,
                                                 mesh=mesh),
                     key_val, validate_every=tc.validate_every, validate_after=tc.pretrain_steps,
                     stop_after=stop_after, main_process=main_process)
    return Run(model, state, dataset, ckpts, mesh)


def final_evaluation(config, workdir: str, run: Run) -> dict:
    """Test-split evaluation of the best checkpoint; writes eval.json and plots."""
    state = run.checkpoints.restore_best(run.state) or run.state
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 10**6)
    summary = evaluate.evaluate(run.model, state.params, key, run.dataset.test,
                                config.eval.context_sizes, config.eval.num_particles,
                                config.eval.task_chunk, mesh=run.mesh)
    summary["test_time"] = evaluate.measure_test_time(
        run.model, state.params, key, run.dataset.test, max(config.eval.context_sizes),
        config.eval.num_particles, config.eval.task_chunk)
    summary["checkpoint_step"] = int(state.step)
    summary["benchmark"] = run.dataset.name
    summary["sampler"] = run.model.sampler.name
    if sharding.is_main_process():
        write_json(os.path.join(workdir, "eval.json"), summary)
        plotting.plot_run(run.model, state.params, jax.random.fold_in(key, 1), run.dataset.test,
                          config, workdir)
    return summary


def train_and_evaluate(config, workdir: str, train_fn=None, evaluate_fn=None) -> dict:
    """The whole experiment: train (resuming if possible), then evaluate the best checkpoint.

    `train_fn(config, workdir) -> run` and `evaluate_fn(config, workdir, run) -> summary`
    default to this module's `train` and `final_evaluation` (GMM-NP passes its own).
    """
    run = (train_fn or train)(config, workdir)
    try:
        summary = (evaluate_fn or final_evaluation)(config, workdir, run)
    finally:
        run.checkpoints.close()
    avg = summary["average"]
    logging.info("test: lmlhd_snis %.3f  lmlhd_mc %.3f  elbo %.3f  mse %.4f  (avg over n); "
                 "%.4f s per new task", avg["lmlhd_snis_median"], avg["lmlhd_mc_median"],
                 avg["elbo_median"], avg["mse_median"], summary["test_time"]["per_task_s"])
    return summary


METHODS = ("amortized", "gmm")


def run_experiment(config, workdir: str) -> dict:
    """Dispatches on `config.method`: the amortized model here, or the per-task GMM-NP."""
    if config.method == "gmm":
        from amvi_jax import gmm_np  # imported lazily: only GMM runs need it

        return gmm_np.train_and_evaluate(config, workdir)
    if config.method != "amortized":
        raise ValueError(f"config.method={config.method!r}: unknown; valid: {', '.join(METHODS)}")
    return train_and_evaluate(config, workdir)
