"""Training loop: exact resumption, divergence handling, best-checkpoint bookkeeping."""

import json
import os

import jax
import numpy as np
import pytest

from amvi_jax import train


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves(state.params)]


@pytest.mark.slow
def test_interrupted_and_resumed_run_equals_uninterrupted(tiny_config, tmp_path):
    full = train.train(tiny_config, str(tmp_path / "full"))
    full.checkpoints.close()
    part = train.train(tiny_config, str(tmp_path / "resumed"), stop_after=10)
    part.checkpoints.close()
    assert int(part.state.step) == 10
    resumed = train.train(tiny_config, str(tmp_path / "resumed"))
    resumed.checkpoints.close()
    assert int(resumed.state.step) == int(full.state.step) == 20
    for a, b in zip(_leaves(full.state), _leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(a, b)
    # The resumed log holds each logged step once.
    with open(tmp_path / "resumed" / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f if "loss" in line]
    assert steps == [5, 10, 15, 20]


def test_train_step_records_metrics_and_changes_params(tiny_config):
    ds = train.load_data(tiny_config)
    from amvi_jax import model as model_lib

    model = model_lib.from_config(tiny_config, 1, 1)
    opt = train.make_optimizer(tiny_config)
    state = train.init_state(model, opt, jax.random.PRNGKey(0), 1, 1)
    before = _leaves(state)
    step = train.make_train_step(model, opt, tiny_config)
    new, metrics = step(state, jax.random.PRNGKey(1), ds.meta_train.x, ds.meta_train.y)
    assert set(metrics) >= {"loss", "elbo", "log_z_hat", "grad_norm"}
    assert np.isfinite(float(metrics["loss"])) and int(new.step) == 1
    assert int(new.bad_step) == -1
    assert any(not np.array_equal(a, b) for a, b in zip(before, _leaves(new), strict=True))
    # The bound: the ELBO of a batch lies below its log Z-hat (Jensen, same particles).
    assert float(metrics["elbo"]) <= float(metrics["log_z_hat"]) + 1e-4


def test_divergence_stops_with_message_and_keeps_last_good_checkpoint(tiny_config, tmp_path):
    tiny_config.train.learning_rate = 1e30  # the first update sends params to ~1e30
    tiny_config.train.checkpoint_every = 1
    tiny_config.train.log_every = 1
    workdir = str(tmp_path / "diverged")
    with pytest.raises(FloatingPointError, match=r"non-finite .* at step \d+; training stopped"):
        train.train(tiny_config, workdir)
    # What was saved restores to finite parameters.
    from amvi_jax import checkpoint
    from amvi_jax import model as model_lib

    model = model_lib.from_config(tiny_config, 1, 1)
    template = train.init_state(model, train.make_optimizer(tiny_config),
                                jax.random.PRNGKey(0), 1, 1)
    ckpts = checkpoint.Checkpoints(workdir)
    restored = ckpts.restore_last(template)
    ckpts.close()
    assert restored is not None
    assert all(np.all(np.isfinite(a)) for a in _leaves(restored))
    assert int(restored.bad_step) == -1


@pytest.mark.slow
def test_best_checkpoint_tracks_validation(tiny_config, tmp_path):
    workdir = tmp_path / "run"
    run = train.train(tiny_config, str(workdir))
    run.checkpoints.close()
    with open(workdir / "checkpoints" / "best.json") as f:
        best = json.load(f)
    with open(workdir / "metrics.jsonl") as f:
        vals = [json.loads(line) for line in f if "val_lmlhd_snis" in line]
    assert [v["step"] for v in vals] == [10, 20]
    top = max(vals, key=lambda v: v["val_lmlhd_snis"])
    assert best["step"] == top["step"]
    np.testing.assert_allclose(best["score"], top["val_lmlhd_snis"], rtol=1e-6)
    assert os.path.isdir(workdir / "checkpoints" / "best" / str(best["step"]))
