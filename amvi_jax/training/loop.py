"""The training loop every method shares: resume, logging, validation, checkpoints.

    state, resumed = resume(checkpoints, state, workdir)
    state = run_loop(config, workdir, state, checkpoints, step_fn, validation, ...)

`step_fn(state, step) -> (state, metrics)` is one jitted step of the method. Metrics are
averaged between log lines into workdir/metrics.jsonl; every `validation.every` steps the
validation tasks' median lmlhd_snis (averaged over context sizes) picks the best checkpoint,
and with `validation.at_start` the state the validated stage starts from is a candidate too (a
warm-started diffusion never keeps a checkpoint worse than its start); a
non-finite update stops the run with a FloatingPointError naming the step and the last good
checkpoint, which is kept.

Every line carries `time_s`: wall seconds of training so far (compilation, logging and
checkpointing included; validation with the best checkpoint it keeps, data loading and the
final evaluation not, so that a method whose validation is costly, such as GMM-NP fitting every
validation task, is not charged for being measured), continued across a resume and, for a
warm start, from the end of the run it starts from (`time_offset`). Validation lines also
carry their own `val_s`. With `train.time_budget_s` > 0 the run stops at the first step past
that budget, validating and saving there as at its last step. `train.validate_every_s` > 0
also validates at the first step that many training seconds after the last validation: a
curve evenly spaced in time whatever the method's speed, which a step cadence cannot give when
a step costs 3 ms (np) or 80 ms (a diffusion).
"""

import json
import os
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
from absl import logging

from amvi_jax import checkpoint, evaluate
from amvi_jax import workdir as workdir_lib


class Validation(NamedTuple):
    """How a method scores its model on the validation split (docs/DESIGN.md section 5)."""

    model: Any  # a model.Model
    tasks: Any  # data.TaskSet
    batch_metrics: Callable  # evaluate.make_batch_metrics(model, ...)
    key: jax.Array
    every: int  # validate every this many steps (0: never)
    after: int = 0  # ... but only once more than this many steps are done
    context_width: int | None = None  # see evaluate.evaluate
    at_start: bool = False  # also validate the state at step `after` (the stage's start)


class Clock:
    """Training seconds of a run so far: `start` (what earlier sessions of it spent, or
    `offset` on a fresh start) plus this session's wall time, less the time spent in
    `exclude` (validation)."""

    def __init__(self, start: float, offset: float = 0.0):
        self.base = start if start else offset
        self.t0 = time.perf_counter()
        self.excluded = 0.0

    def since_start(self) -> float:
        return time.perf_counter() - self.t0 - self.excluded

    def __call__(self) -> float:
        return self.base + self.since_start()

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds


def resume(ckpts: checkpoint.Checkpoints, state, workdir: str):
    """(state, restored): the newest checkpoint that restores, else `state` unchanged.

    metrics.jsonl loses the lines past the restored step (all of them on a fresh start), so a
    resumed run's log has no duplicates.
    """
    restored = ckpts.restore_last(state)
    if restored is not None:
        logging.info("resumed from step %d", int(restored.step))
    workdir_lib.trim_metrics(os.path.join(workdir, "metrics.jsonl"),
                             -1 if restored is None else int(restored.step))
    return (state, False) if restored is None else (restored, True)


def validate(config, state, validation: Validation, step: int) -> float:
    """The validation median lmlhd_snis of `state` at `step`, averaged over context sizes."""
    summary = evaluate.evaluate(
        validation.model, state.params, jax.random.fold_in(validation.key, step),
        validation.tasks, config.eval.context_sizes, config.eval.validation_particles,
        config.eval.task_chunk, batch_metrics=validation.batch_metrics,
        context_width=validation.context_width)
    return summary["average"]["lmlhd_snis_median"]


def _next_multiple(step: int, every: int) -> int:
    """The first multiple of `every` after `step` (never, for every <= 0)."""
    return (step // every + 1) * every if every > 0 else 2**62


def run_loop(config, workdir: str, state, ckpts: checkpoint.Checkpoints, step_fn,
             validation: Validation, *, stop_after: int | None = None,
             log_keys=("loss", "elbo"), main_process: bool = True, time_offset: float = 0.0,
             steps_fn=None):
    """Steps `state` to config.train.num_steps (or `stop_after`, or past
    config.train.time_budget_s): logs, validates, saves. `time_offset`: time_s of a fresh
    start (a warm start's predecessor); a resumed run continues its own metrics.jsonl.

    With `steps_fn(state, first, n) -> (state, metrics [n])` and train.steps_per_call = N > 1,
    up to N steps run per call, each call ending at the next step that logs, validates by
    step count or saves, so those happen at the same steps as one step per call; the time
    budget and `validate_every_s` are looked at between calls.
    """
    tc = config.train
    per_call = tc.steps_per_call if steps_fn is not None else 1
    best_score = ckpts.best_score()
    start_step = int(state.step)
    end_step = tc.num_steps if stop_after is None else min(stop_after, tc.num_steps)
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    pending = []
    budget = tc.time_budget_s
    clock = Clock(workdir_lib.last_time_s(metrics_path), time_offset)
    every, after = validation.every, validation.after
    every_s = tc.validate_every_s
    at_start = (every > 0 or every_s > 0) and validation.at_start
    last_validation = clock()

    def validate_and_keep(metrics_file, state, done):
        nonlocal best_score, last_validation
        start = time.perf_counter()
        score = validate(config, state, validation, done)
        logging.info("step %d validation lmlhd_snis %.3f (best %.3f, %.0f s)", done, score,
                     best_score, time.perf_counter() - start)
        if score > best_score:
            best_score = score
            ckpts.save_best(done, state, score)
        # Compilation and saving the checkpoint it selects included: GMM-NP's is O(T).
        seconds = time.perf_counter() - start
        clock.exclude(seconds)
        last_validation = clock()
        metrics_file.write(json.dumps(dict(step=done, time_s=last_validation,
                                           val_lmlhd_snis=score, val_s=seconds)) + "\n")

    with open(metrics_path if main_process else os.devnull, "a") as metrics_file:
        if at_start and start_step == after and best_score == -float("inf"):
            validate_and_keep(metrics_file, state, start_step)  # the start is a candidate
        if budget and clock.base >= budget:
            end_step = start_step  # resumed (or warm-started) with its budget already spent
        step = start_step
        while step < end_step:
            boundary = min(end_step, step + per_call, _next_multiple(step, tc.log_every),
                           _next_multiple(step, tc.checkpoint_every),
                           _next_multiple(step, every),
                           after if at_start and step < after else end_step)
            if boundary - step == 1:
                state, metrics = step_fn(state, step)
            else:
                state, metrics = steps_fn(state, step, boundary - step)
            pending.append(metrics)
            done = step = boundary
            last = done == end_step or bool(budget and clock() >= budget)
            log_now = done % tc.log_every == 0 or last
            due = ((every > 0 and done % every == 0)
                   or (every_s > 0 and clock() - last_validation >= every_s))
            val_now = (every > 0 or every_s > 0) and (
                (done > after and (due or done == tc.num_steps or last))
                or (at_start and done == after))
            save_now = done % tc.checkpoint_every == 0 or last
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
                mean = {k: float(np.mean(np.concatenate([np.ravel(m[k]) for m in pending])))
                        for k in pending[0]}
                pending = []
                rate = (done - start_step) / clock.since_start()
                metrics_file.write(json.dumps(dict(step=done, time_s=clock(),
                                                   steps_per_sec=rate, **mean)) + "\n")
                metrics_file.flush()
                eta = (tc.num_steps - done) / max(rate, 1e-9)
                if budget:  # whichever ends the run first: its steps or its seconds
                    eta = min(eta, max(budget - clock(), 0.0))
                logging.info("step %d/%d  %s  %.1f steps/s  ETA %.0f s", done, tc.num_steps,
                             "  ".join(f"{k} {mean[k]:.4g}" for k in log_keys), rate, eta)
            if val_now:
                validate_and_keep(metrics_file, state, done)
            if save_now:
                ckpts.save_last(done, state)
            if last:
                break
    ckpts.wait()
    return state
