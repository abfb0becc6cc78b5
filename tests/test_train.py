"""Training loop: exact resumption, divergence handling, damaged checkpoints, best checkpoint."""

import json
import os
import pathlib
import time

import jax
import numpy as np
import pytest

from amvi_jax import checkpoint, experiment, methods, workdir
from amvi_jax.methods import amortized_step as step_lib
from amvi_jax.training import loop


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves(state.params)]


def _train(config, path, **kwargs):
    run = experiment.train(config, str(path), **kwargs)
    run.checkpoints.close()
    return run


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_config, tmp_path):
    full = _train(tiny_config, tmp_path / "full")  # one step per call
    # Resumed, and with 3 fused steps per call (train.steps_per_call), which does not divide
    # log_every = 5: calls end where the loop logs, and the stop at step 7 falls inside the
    # stretch 5..8 of one call. Same steps, same keys: the same parameters.
    tiny_config.train.steps_per_call = 3
    part = _train(tiny_config, tmp_path / "resumed", stop_after=7)
    assert int(part.state.step) == 7
    resumed = _train(tiny_config, tmp_path / "resumed")
    assert int(resumed.state.step) == int(full.state.step) == 20
    for a, b in zip(_leaves(full.state), _leaves(resumed.state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # bit-identical on our CPUs
    # The resumed log holds each logged step once, at the steps one step per call logs at
    # (and the interrupted run's last step).
    with open(tmp_path / "resumed" / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert [ln["step"] for ln in lines if "loss" in ln] == [5, 7, 10, 15, 20]
    with open(tmp_path / "full" / "metrics.jsonl") as f:
        assert [json.loads(ln)["step"] for ln in f if "val_lmlhd_snis" in ln] == [
            ln["step"] for ln in lines if "val_lmlhd_snis" in ln and ln["step"] != 7]
    # Wall time continues across the resume: every line has it, in step order, never falling.
    times = [ln["time_s"] for ln in lines]
    assert [ln["step"] for ln in lines] == sorted(ln["step"] for ln in lines)
    assert all(t > 0 for t in times) and np.all(np.diff(times) >= 0), times


@pytest.mark.slow
def test_time_s_leaves_out_validation(tiny_config, tmp_path, monkeypatch):
    """A validation that takes 0.5 s more each time (3 of them) is not training time."""
    real = loop.validate

    def slow(*args):
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(loop, "validate", slow)
    start = time.perf_counter()
    _train(tiny_config, tmp_path / "run")
    wall = time.perf_counter() - start
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    vals = [ln for ln in lines if "val_lmlhd_snis" in ln]
    assert len(vals) == 3 and all(v["val_s"] >= 0.5 for v in vals)
    assert lines[-1]["time_s"] < wall - 1.5


@pytest.mark.slow
def test_time_budget_stops_validates_and_saves_and_a_resume_respects_it(tiny_config, tmp_path):
    tiny_config.train.time_budget_s = 1e-6  # spent by the first step
    path = tmp_path / "run"
    run = _train(tiny_config, path)
    assert int(run.state.step) == 1
    with open(path / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert [ln["step"] for ln in lines if "val_lmlhd_snis" in ln] == [0, 1]
    assert [ln["step"] for ln in lines if "loss" in ln] == [1]
    assert sorted(int(d) for d in os.listdir(path / "checkpoints" / "last")) == [1]
    again = _train(tiny_config, path)  # the budget is spent: nothing more is trained
    assert int(again.state.step) == 1
    with pytest.raises(ValueError, match="train.time_budget_s"):
        tiny_config.train.time_budget_s = -1.0
        experiment.train(tiny_config, str(tmp_path / "bad"))


@pytest.mark.slow
def test_validation_by_training_seconds(tiny_config, tmp_path):
    # A cadence of 1 ns is due at every step; the step cadence alone (100) never is before the end.
    tiny_config.train.update(dict(num_steps=4, validate_every=100, validate_every_s=1e-9))
    _train(tiny_config, tmp_path / "run")
    with open(tmp_path / "run" / "metrics.jsonl") as f:
        lines = [json.loads(line) for line in f]
    assert [ln["step"] for ln in lines if "val_lmlhd_snis" in ln] == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="train.validate_every_s"):
        tiny_config.train.validate_every_s = -1.0
        experiment.train(tiny_config, str(tmp_path / "bad"))


def _damage(step_dir) -> None:
    """Truncates every file of a checkpoint to half its size, as a crash mid-write would."""
    for root, _, files in os.walk(step_dir):
        for name in files:
            path = os.path.join(root, name)
            size = os.path.getsize(path)
            with open(path, "r+b") as f:
                f.truncate(size // 2)


@pytest.mark.slow
def test_resume_skips_a_damaged_newest_checkpoint(tiny_config, tmp_path, caplog):
    """The newest checkpoint is truncated: the run says which one, sets it aside and resumes
    from the older intact one, ending with exactly the uninterrupted run's parameters."""
    full = _train(tiny_config, tmp_path / "full")
    part = _train(tiny_config, tmp_path / "run", stop_after=10)  # checkpoints at 5 and 10
    assert int(part.state.step) == 10
    last = tmp_path / "run" / "checkpoints" / "last"
    assert sorted(int(d) for d in os.listdir(last)) == [5, 10]
    _damage(last / "10")
    with caplog.at_level("INFO"):
        resumed = _train(tiny_config, tmp_path / "run")
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "could not be restored" in message and os.path.join("last", "10") in message
    assert "resumed from step 5" in message
    assert os.path.isdir(tmp_path / "run" / "checkpoints" / "damaged" / "last" / "10")
    assert int(resumed.state.step) == 20
    for a, b in zip(_leaves(full.state), _leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("objective, bound", [("elbo", "elbo"), ("iw", "log_z_hat")])
def test_train_step_improves_the_bound_on_the_batch_it_trains(tiny_config, objective, bound):
    """One jitted step returns its metrics and params that raise its objective (the ELBO, or
    the IW bound log Z-hat) on its own batch.

    The step's batch depends only on (base key, step index), so the same step index from the
    old and the new params sees the same tasks, context subsets and particle noise.
    """
    tiny_config.train.learning_rate = 1e-2
    tiny_config.train.objective = objective
    ds = workdir.load_data(tiny_config)
    setup = methods.REGISTRY["amortized"].setup(tiny_config, ds)
    model, state = setup.model, setup.state
    step = step_lib.make_train_step(model, step_lib.make_optimizer(tiny_config), tiny_config)
    key = jax.random.PRNGKey(1)
    new, metrics = step(state, key, ds.meta_train.x, ds.meta_train.y)
    assert set(metrics) >= {"loss", "elbo", "log_z_hat", "grad_norm"}
    assert int(new.step) == 1 and int(new.bad_step) == -1
    assert float(metrics[bound]) == pytest.approx(-float(metrics["loss"]), rel=1e-5)
    # Re-run step 0 with the updated params: same batch and noise, better bound.
    again, after = step(new._replace(step=jax.numpy.zeros((), jax.numpy.int32)), key,
                        ds.meta_train.x, ds.meta_train.y)
    assert float(after[bound]) > float(metrics[bound])


def test_divergence_stops_with_message_and_keeps_last_good_checkpoint(tiny_config, tmp_path):
    tiny_config.train.learning_rate = 1e30  # the first update sends params to ~1e30
    tiny_config.train.checkpoint_every = 1
    tiny_config.train.log_every = 1
    path = str(tmp_path / "diverged")
    with pytest.raises(FloatingPointError, match=r"non-finite .* at step \d+; training stopped"):
        experiment.train(tiny_config, path)
    # What was saved restores to finite parameters.
    template = methods.REGISTRY["amortized"].setup(tiny_config,
                                                   workdir.load_data(tiny_config)).state
    ckpts = checkpoint.Checkpoints(path)
    restored = ckpts.restore_last(template)
    ckpts.close()
    assert restored is not None
    assert all(np.all(np.isfinite(a)) for a in _leaves(restored))
    assert int(restored.bad_step) == -1


@pytest.mark.slow
def test_best_checkpoint_tracks_validation(tiny_run):
    path = pathlib.Path(tiny_run)
    with open(path / "checkpoints" / "best.json") as f:
        best = json.load(f)
    with open(path / "metrics.jsonl") as f:
        vals = [json.loads(line) for line in f if "val_lmlhd_snis" in line]
    assert [v["step"] for v in vals] == [0, 10, 20]  # the start is a candidate too
    top = max(vals, key=lambda v: v["val_lmlhd_snis"])
    assert best["step"] == top["step"]
    np.testing.assert_allclose(best["score"], top["val_lmlhd_snis"], rtol=1e-6)
    assert os.path.isdir(path / "checkpoints" / "best" / str(best["step"]))
