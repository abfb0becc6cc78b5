"""Diffusion training: Gaussian pre-training stage, warm start from another run, compile once."""

import jax
import numpy as np
import pytest

from amvi_jax import checkpoint, experiment, methods, samplers, workdir
from amvi_jax.methods import amortized_step as step_lib
from configs import default


def _diffusion(config, name="ldvi", num_steps=2):
    default.with_diffusion(config, name, num_steps=num_steps)
    if "hidden" in config.sampler:
        config.sampler.hidden = (8,)
    config.train.update(dict(num_steps=12, pretrain_steps=6, log_every=3, validate_every=3,
                             checkpoint_every=3))
    return config


def _leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def _train(config, path, **kwargs):
    run = experiment.train(config, str(path), **kwargs)
    run.checkpoints.close()
    return run


@pytest.mark.slow
def test_pretraining_stage_leaves_sampler_untouched_then_trains_it(tiny_config, tmp_path):
    config = _diffusion(tiny_config)
    init = _train(config, tmp_path / "init", stop_after=0)
    assert int(init.state.step) == 0
    pre = _train(config, tmp_path / "run", stop_after=6)
    # Gaussian pre-training: zero gradients for the sampler, so Adam leaves it exactly as is.
    for a, b in zip(_leaves(init.state.params["sampler"]), _leaves(pre.state.params["sampler"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(
        _leaves(init.state.params["decoder"]), _leaves(pre.state.params["decoder"]), strict=True))
    post = _train(config, tmp_path / "run")
    assert any(not np.array_equal(a, b) for a, b in zip(
        _leaves(init.state.params["sampler"]), _leaves(post.state.params["sampler"]), strict=True))


@pytest.mark.slow
def test_the_diffusion_stage_validates_its_own_start(tiny_config, tmp_path):
    """With a Gaussian stage of 6 steps, validation runs at step 6 (the diffusion as it starts)
    before any diffusion update, then every 3 steps; the best checkpoint is the best of them,
    so a diffusion never keeps a checkpoint worse than its start."""
    import json

    config = _diffusion(tiny_config)
    path = tmp_path / "run"
    _train(config, path)
    with open(path / "metrics.jsonl") as f:
        vals = [json.loads(line) for line in f if "val_lmlhd_snis" in line]
    assert [v["step"] for v in vals] == [6, 9, 12]  # without the option: [9, 12]
    with open(path / "checkpoints" / "best.json") as f:
        best = json.load(f)
    assert best["score"] == max(v["val_lmlhd_snis"] for v in vals)


@pytest.mark.slow
def test_every_diffusion_warm_starts_from_a_gaussian_run(tiny_config, tmp_path):
    """Every registered diffusion takes the encoder and decoder of another run's best
    checkpoint (the benchmark runner's warm start) and starts at step 0."""
    src = experiment.train(tiny_config, str(tmp_path / "np"))  # Gaussian NP
    best = src.checkpoints.restore_best(src.state)
    src.checkpoints.close()
    for name in samplers.DIFFUSIONS:
        config = _diffusion(default.get_config(), name)
        config.data, config.model, config.eval = (tiny_config.data, tiny_config.model,
                                                  tiny_config.eval)
        config.train.update(dict(pretrain_steps=0, init_from=str(tmp_path / "np"),
                                 validate_at_start=False))  # no compile of a validation
        run = _train(config, tmp_path / name, stop_after=0)
        for part in ("encoder", "decoder"):
            for a, b in zip(_leaves(best.params[part]), _leaves(run.state.params[part]),
                            strict=True):
                np.testing.assert_array_equal(a, b)
        assert int(run.state.step) == 0 and run.model.sampler.name == name


def test_init_from_a_run_with_another_encoder_is_a_clear_error(tiny_config, tmp_path):
    _train(tiny_config, tmp_path / "np", stop_after=1)  # bayesian encoder, checkpoint at 1
    config = _diffusion(tiny_config)
    config.model.aggregation = "mean"
    config.train.update(dict(pretrain_steps=0, init_from=str(tmp_path / "np")))
    with pytest.raises(ValueError, match=r"config.train.init_from=.*encoder 'bayesian' there, "
                                         r"'mean' here"):
        _train(config, tmp_path / "ldvi", stop_after=0)


def test_missing_init_from_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint"):
        checkpoint.restore_params_from(str(tmp_path / "empty"), {"a": np.zeros(2)})


def test_train_step_compiles_once_for_all_context_masks(tiny_config):
    config = _diffusion(tiny_config, "mcd")
    ds = workdir.load_data(config)
    setup = methods.REGISTRY["amortized"].setup(config, ds)
    step = step_lib.make_train_step(setup.model, step_lib.make_optimizer(config), config)
    state = setup.state
    for _ in range(3):  # every step draws new tasks and new context masks
        state, metrics = step(state, jax.random.PRNGKey(1), ds.meta_train.x, ds.meta_train.y)
    assert step._cache_size() == 1
    assert np.isfinite(float(metrics["loss"]))


def test_learning_rate_switches_exactly_when_the_diffusion_stage_starts(tiny_config):
    config = _diffusion(tiny_config)
    config.train.update(dict(learning_rate=1e-2, diffusion_learning_rate=1e-3,
                             pretrain_steps=3, grad_clip_norm=1e9))
    opt = step_lib.make_optimizer(config)
    params = np.zeros(())
    state = opt.init(params)
    steps = []
    for _ in range(5):  # Adam's update for a constant gradient has magnitude = the rate
        updates, state = opt.update(np.ones(()), state, params)
        steps.append(-float(updates))
    np.testing.assert_allclose(steps, [1e-2, 1e-2, 1e-2, 1e-3, 1e-3], rtol=1e-4)


def test_a_fixed_decoder_stops_learning_exactly_when_the_diffusion_stage_starts(tiny_config):
    """train.diffusion_trains_decoder=False: the decoder moves in the Gaussian stage only (Adam's
    momentum included), the encoder and sampler in both, and they step as if the decoder's
    gradient were zero from then on (the global-norm clip does not see it)."""
    config = _diffusion(tiny_config)
    config.train.update(dict(learning_rate=1e-2, diffusion_learning_rate=1e-2,
                             pretrain_steps=2, grad_clip_norm=1.0))
    params = dict(decoder=np.zeros(3), encoder=np.zeros(()), sampler=np.zeros(()))

    def updates(trains_decoder, decoder_grad):
        config.train.diffusion_trains_decoder = trains_decoder
        opt = step_lib.make_optimizer(config)
        state, out = opt.init(params), []
        for i, g in enumerate([1.0, 2.0, 0.5, 3.0]):
            grads = dict(decoder=np.full(3, decoder_grad(i)), encoder=np.full((), g),
                         sampler=np.full((), -g))
            update, state = opt.update(grads, state, params)
            out.append(jax.tree.map(float, jax.tree.map(lambda a: np.abs(a).max(), update)))
        return out

    fixed = updates(False, lambda i: 100.0)
    assert [u["decoder"] > 0 for u in fixed] == [True, True, False, False]
    # The same encoder and sampler steps as a decoder whose gradient vanishes at step 2.
    vanishing = updates(True, lambda i: 100.0 if i < 2 else 0.0)
    for a, b in zip(fixed, vanishing, strict=True):
        np.testing.assert_allclose([a["encoder"], a["sampler"]], [b["encoder"], b["sampler"]],
                                   rtol=1e-6)
    assert vanishing[2]["decoder"] > 0  # where Adam's momentum would have moved it on
    assert all(u["decoder"] > 0 for u in updates(True, lambda i: 100.0))  # the default
