"""Training objectives: the importance-weighted bound against a known log Z, and the split of
gradients between the model (decoder) and the proposal (encoder, sampler)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from amvi_jax import data, methods, samplers, workdir
from amvi_jax.training import objectives
from tests.samplers import common
from tests.samplers import targets as tg


def test_iw_bound_tightens_with_particles_towards_log_z():
    """q0 is a poor proposal for a Bayesian linear regression: the ELBO is far below log Z, the
    importance-weighted bound rises with P and stays below log Z (up to Monte Carlo error)."""
    target = tg.bayesian_linear_regression()
    sampler = samplers.get("gaussian")
    mean, scale = jnp.asarray(target.q0_mean), jnp.asarray(target.q0_scale)
    log_w = jax.jit(lambda k: sampler.run({}, k, target.log_prob, mean, scale, common.EMPTY,
                                          2**16).log_w)(jax.random.key(0))
    bound = {p: float(jnp.mean(jax.vmap(objectives.iw)(log_w.reshape(-1, p))))
             for p in (1, 16, 1024)}
    assert bound[1] == pytest.approx(float(objectives.elbo(log_w)), abs=1e-4)
    assert bound[1] + 1.0 < bound[16] < bound[1024]
    # E[IW_P] <= log Z; 64 batches of 1024 give an s.e. of a few hundredths here.
    assert bound[1024] < target.log_z + 0.05
    assert bound[1024] > target.log_z - 1.0


def _model_and_batch(config, sampler=None):
    from configs import default

    if sampler is not None:
        config = default.with_diffusion(config, sampler, num_steps=2)
        config.sampler.hidden = (8,)
        config.sampler.stop_grad_score = False  # the pathwise part through the score
    ds = workdir.load_data(config)
    model = methods.REGISTRY["amortized"].setup(config, ds).model
    params = model.init(jax.random.PRNGKey(0), 1, 1)
    params = jax.tree.map(lambda a: a + 0.05 * jnp.ones_like(a), params)  # non-zero network
    batch = data.sample_train_batch(jax.random.PRNGKey(1), ds.meta_train.x, ds.meta_train.y,
                                    4, 2)
    return model, params, batch


def test_split_objectives_route_the_gradients(tiny_config):
    """objective = iw, proposal_objective = elbo: the decoder's gradient is that of the IW
    bound, the encoder's (and any sampler's) that of the ELBO, on the same batch and particles."""
    model, params, batch = _model_and_batch(tiny_config)
    key = jax.random.PRNGKey(2)

    def neg(objective):
        return lambda p: -jnp.mean(objectives.batch_bounds(model, p, key, batch, 8, objective)[0])

    loss, _, _, grads = jax.jit(lambda p: objectives.split_gradients(
        model, p, key, batch, 8, objectives.iw, objectives.elbo))(params)
    iw_loss, g_iw = jax.value_and_grad(neg(objectives.iw))(params)
    g_elbo = jax.grad(neg(objectives.elbo))(params)
    assert float(loss) == pytest.approx(float(iw_loss), rel=1e-5)
    for part, expected in (("decoder", g_iw), ("encoder", g_elbo), ("sampler", g_elbo)):
        for a, b in zip(jax.tree.leaves(grads[part]), jax.tree.leaves(expected[part]),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    # The two gradients really differ, or the test would not see a wrong routing.
    diff = [np.max(np.abs(a - b)) for a, b in zip(jax.tree.leaves(g_iw["encoder"]),
                                                  jax.tree.leaves(g_elbo["encoder"]),
                                                  strict=True)]
    assert max(diff) > 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("objective, proposal", [("iw", "elbo"), ("sinp", "")])
def test_training_on_the_iw_bound_runs_and_logs_it(tiny_config, tmp_path, objective, proposal):
    from amvi_jax import experiment

    tiny_config.train.update(dict(objective=objective, proposal_objective=proposal,
                                  num_particles=4, min_context_size=0))
    tiny_config.model.tie_prior = True
    summary = experiment.train_and_evaluate(tiny_config, str(tmp_path / "run"))
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    # The empty context is exact with the tied prior: its ELBO is log Z = 0.
    assert abs(summary["context_sizes"]["0"]["elbo_median"]) < 1e-4


def test_sinp_m_step_is_the_iw_gradient_without_the_path(tiny_config):
    """K = 0: the particles do not depend on the decoder, so the M-step's decoder gradient IS
    the IW bound's, and the encoder gets the ELBO's. With a diffusion (DDS, whose moves follow
    the decoder's score) the two decoder gradients differ by the pathwise part."""
    key = jax.random.PRNGKey(2)
    for sampler in (None, "dds"):
        model, params, batch = _model_and_batch(tiny_config, sampler)

        def neg(objective, model=model, batch=batch):
            return lambda p: -jnp.mean(objectives.batch_bounds(model, p, key, batch, 8,
                                                             objective)[0])

        loss, _, _, grads = jax.jit(lambda p, model=model, batch=batch: objectives.em_gradients(
            model, p, key, batch, 8, objectives.iw, objectives.elbo))(params)
        iw_loss, g_iw = jax.value_and_grad(neg(objectives.iw))(params)
        g_elbo = jax.grad(neg(objectives.elbo))(params)
        assert float(loss) == pytest.approx(float(iw_loss), rel=1e-5)
        for a, b in zip(jax.tree.leaves(grads["encoder"]), jax.tree.leaves(g_elbo["encoder"]),
                        strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
        gap = max(float(np.max(np.abs(a - b))) for a, b in zip(
            jax.tree.leaves(grads["decoder"]), jax.tree.leaves(g_iw["decoder"]), strict=True))
        if sampler is None:
            assert gap < 1e-4
        else:
            assert gap > 1e-3


def test_sinp_proposal_defaults_to_the_elbo():
    from configs import default

    tc = default.get_config().train
    tc.objective = "sinp"
    assert objectives.proposal_name(tc) == "elbo"
    tc.proposal_objective = "iw"
    assert objectives.proposal_name(tc) == "iw"
    tc.objective, tc.proposal_objective = "iw", ""
    assert objectives.proposal_name(tc) == "iw"
