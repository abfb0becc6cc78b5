"""Several training steps per compiled call (`train.steps_per_call`): the same steps (the same
resume: tests/test_train.py)."""


import jax
import numpy as np
import pytest

from amvi_jax import experiment, methods, workdir
from configs import gmm


def _leaves(state):
    return [np.asarray(a) for a in jax.tree.leaves(state.params)]


def _close(a_state, b_state):
    # Same keys, same arithmetic: equal to float rounding (bit-identical on this machine's CPU).
    for a, b in zip(_leaves(a_state), _leaves(b_state), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _ldvi_with_warm_start(config):
    config.sampler.update(dict(name="ldvi", num_steps=2, hidden=(8,)))
    config.train.pretrain_steps = 3  # the fused call below crosses the warm start's end
    return config


def _gmm(config):
    # 8 tasks x 2 sets = 16 posteriors, 4 per step: an epoch is 4 steps, crossed below.
    g = gmm.get_config()
    g.data = config.data
    g.train.update(dict(num_steps=20))
    g.gmm.update(dict(num_context_sets=2, batch_size=4, num_test_steps=3))
    return g


# The fast tier keeps np; the warm start's and GMM-NP's epoch boundaries run in the full suite.
@pytest.mark.parametrize("variant", ["np", pytest.param("ldvi_warm_start", marks=pytest.mark.slow),
                                     pytest.param("gmm", marks=pytest.mark.slow)])
def test_n_fused_steps_equal_n_single_steps(tiny_config, variant):
    config = {"np": lambda c: c, "ldvi_warm_start": _ldvi_with_warm_start,
              "gmm": _gmm}[variant](tiny_config)
    dataset = workdir.load_data(config)
    method = methods.REGISTRY[config.method]
    single = method.setup(config, dataset)
    state, losses = single.state, []
    for i in range(7):
        state, metrics = single.step(state, i)
        losses.append(float(metrics["loss"]))
    fused = method.setup(config, dataset)
    fused_state, fused_metrics = fused.steps(fused.state, 0, 7)
    assert int(fused_state.step) == 7
    assert fused_metrics["loss"].shape == (7,)
    np.testing.assert_allclose(np.asarray(fused_metrics["loss"]), losses, rtol=1e-6)
    _close(state, fused_state)
    # The step index is the key: a wrong fold_in (e.g. the call's first step for all) differs.
    assert not np.allclose(np.asarray(fused_metrics["loss"])[1:], losses[0])


def test_steps_per_call_is_checked(tiny_config, tmp_path):
    tiny_config.train.steps_per_call = 0
    with pytest.raises(ValueError, match="train.steps_per_call"):
        experiment.train(tiny_config, str(tmp_path))
