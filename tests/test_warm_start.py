"""Diffusion training: Gaussian pre-training stage, warm start from another run, compile once."""

import jax
import numpy as np
import pytest

from amvi_jax import checkpoint, train
from amvi_jax import model as model_lib
from configs import default


def _diffusion(config, name="ldvi", num_steps=2):
    default.with_diffusion(config, name, num_steps=num_steps)
    config.sampler.hidden = (8,)
    config.train.update(dict(num_steps=12, pretrain_steps=6, log_every=3, validate_every=3,
                             checkpoint_every=3))
    return config


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


@pytest.mark.slow
def test_pretraining_stage_leaves_sampler_untouched_then_trains_it(tiny_config, tmp_path):
    config = _diffusion(tiny_config)
    init = train.train(config, str(tmp_path / "init"), stop_after=0)
    init.checkpoints.close()
    assert int(init.state.step) == 0
    pre = train.train(config, str(tmp_path / "run"), stop_after=6)
    pre.checkpoints.close()
    # Gaussian pre-training: zero gradients for the sampler, so Adam leaves it exactly as is.
    for a, b in zip(_leaves(init.state.params["sampler"]), _leaves(pre.state.params["sampler"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(
        _leaves(init.state.params["decoder"]), _leaves(pre.state.params["decoder"]), strict=True))
    post = train.train(config, str(tmp_path / "run"))
    post.checkpoints.close()
    assert any(not np.array_equal(a, b) for a, b in zip(
        _leaves(init.state.params["sampler"]), _leaves(post.state.params["sampler"]), strict=True))


@pytest.mark.slow
def test_init_from_another_run_copies_its_best_encoder_and_decoder(tiny_config, tmp_path):
    src = train.train(tiny_config, str(tmp_path / "np"))  # Gaussian NP
    best = src.checkpoints.restore_best(src.state)
    src.checkpoints.close()
    config = _diffusion(tiny_config)
    config.train.pretrain_steps = 0
    config.train.init_from = str(tmp_path / "np")
    run = train.train(config, str(tmp_path / "ldvi"), stop_after=0)
    run.checkpoints.close()
    for part in ("encoder", "decoder"):
        for a, b in zip(_leaves(best.params[part]), _leaves(run.state.params[part]), strict=True):
            np.testing.assert_array_equal(a, b)
    assert int(run.state.step) == 0


def test_missing_init_from_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        checkpoint.restore_params_from(str(tmp_path / "empty"), {"a": np.zeros(2)})


def test_train_step_compiles_once_for_all_context_masks(tiny_config):
    config = _diffusion(tiny_config, "mcd")
    ds = train.load_data(config)
    model = model_lib.from_config(config, 1, 1)
    opt = train.make_optimizer(config)
    state = train.init_state(model, opt, jax.random.PRNGKey(0), 1, 1)
    step = train.make_train_step(model, opt, config)
    for _ in range(3):  # every step draws new tasks and new context masks
        state, metrics = step(state, jax.random.PRNGKey(1), ds.meta_train.x, ds.meta_train.y)
    assert step._cache_size() == 1
    assert np.isfinite(float(metrics["loss"]))


def test_learning_rate_switches_exactly_when_the_diffusion_stage_starts(tiny_config):
    config = _diffusion(tiny_config)
    config.train.update(dict(learning_rate=1e-2, diffusion_learning_rate=1e-3,
                             pretrain_steps=3, grad_clip_norm=1e9))
    opt = train.make_optimizer(config)
    params = np.zeros(())
    state = opt.init(params)
    steps = []
    for _ in range(5):  # Adam's update for a constant gradient has magnitude = the rate
        updates, state = opt.update(np.ones(()), state, params)
        steps.append(-float(updates))
    np.testing.assert_allclose(steps, [1e-2, 1e-2, 1e-2, 1e-3, 1e-3], rtol=1e-4)
