"""The amortized model's jitted meta-training step (docs/DESIGN.md section 4).

One step (state, base_key, x, y) -> (state, metrics): it draws a batch of tasks and S context
subsets per task from `fold_in(base_key, step)`, so a resumed run repeats exactly; the sampler
is vmapped over tasks and subsets and itself vmaps over particles; the objective of every
(task, subset) is averaged; Adam with global-norm clipping updates encoder, decoder and sampler
together. With `train.proposal_objective` set to another objective, the decoder ascends
`train.objective` and the encoder and sampler ascend the proposal objective; objective `sinp`
gives the decoder an M-step with fixed particles instead (`em_gradients`).
"""

import jax
import jax.numpy as jnp
import optax

from amvi_jax import data, sharding
from amvi_jax.training import objectives
from amvi_jax.training import state as state_lib

LR_SCHEDULES = ("constant", "cosine")


def _stage_rate(config, rate: float, steps: int):
    """`rate` held (train.lr_schedule "constant") or cosine-decayed over `steps` to
    `rate * train.lr_final_fraction` ("cosine")."""
    if config.train.lr_schedule == "constant":
        return rate
    return optax.cosine_decay_schedule(rate, max(int(steps), 1),
                                       alpha=config.train.lr_final_fraction)


def make_optimizer(config) -> optax.GradientTransformation:
    """Adam with global-norm clipping; the rate drops to `diffusion_learning_rate` once the
    diffusion stage starts (its pathwise gradients through K steps are noisier). Under
    `train.lr_schedule="cosine"` the Gaussian stage's rate decays over its steps (all of
    `train.num_steps` for a Gaussian run, `train.pretrain_steps` before a diffusion) and a
    diffusion run's rate over its own steps."""
    tc = config.train
    if config.sampler.name == "gaussian":
        rate = _stage_rate(config, tc.learning_rate, tc.num_steps)
    elif tc.pretrain_steps == 0:
        rate = _stage_rate(config, tc.diffusion_learning_rate, tc.num_steps)
    elif tc.lr_schedule == "constant":
        # optax applies the scale from update count `pretrain_steps` on
        rate = optax.piecewise_constant_schedule(
            tc.learning_rate, {tc.pretrain_steps: tc.diffusion_learning_rate / tc.learning_rate})
    else:
        rate = optax.join_schedules(
            [_stage_rate(config, tc.learning_rate, tc.pretrain_steps),
             _stage_rate(config, tc.diffusion_learning_rate, tc.num_steps - tc.pretrain_steps)],
            [tc.pretrain_steps])
    return optax.chain(optax.clip_by_global_norm(tc.grad_clip_norm), optax.adam(rate))


def _over_batch(fn, num_per_subset: int):
    """vmap fn(x [N, d_x], y [N, d_y], *per_subset) over tasks and subsets: x, y carry a
    task axis, the `num_per_subset` further arguments (the mask first) a task and a subset axis.
    """
    inner = jax.vmap(fn, in_axes=(None, None) + (0,) * num_per_subset)
    return jax.vmap(inner, in_axes=(0, 0) + (0,) * num_per_subset)


def batch_particles(model, params, key, batch: data.TrainBatch, num_particles: int):
    """The sampler on every (task, subset) of a batch with mask [B, S, N]
    -> (z [B, S, P, d_z], log_w [B, S, P])."""
    num_tasks, num_subsets = batch.mask.shape[:2]
    keys = jax.random.split(key, num_tasks * num_subsets).reshape(num_tasks, num_subsets, -1)

    def one(x, y, mask, k):
        out = model.sample(params, k, x, y, mask, num_particles)
        return out.z, out.log_w

    return _over_batch(one, 2)(batch.x, batch.y, batch.mask, keys)


def per_subset(objective, log_w: jax.Array) -> jax.Array:
    """objective of every (task, subset): log_w [B, S, P] -> [B, S]."""
    return jax.vmap(jax.vmap(objective))(log_w)


def batch_bounds(model, params, key, batch: data.TrainBatch, num_particles: int, objective):
    """Per (task, subset) of a batch with mask [B, S, N]: (objective, ELBO, log Z-hat), each
    [B, S]."""
    log_w = batch_particles(model, params, key, batch, num_particles)[1]
    return (per_subset(objective, log_w), per_subset(objectives.elbo, log_w),
            per_subset(objectives.iw, log_w))


def em_gradients(model, params, key, batch: data.TrainBatch, num_particles: int,
                 proposal_objective):
    """An expectation-maximisation step (objective `sinp`): the decoder ascends
    mean over (task, subset) of sum_p sg(softmax(log w))_p log gamma_theta(sg(z_p)), the encoder
    and sampler `proposal_objective`.

    -> (loss [] = -mean IW bound, elbo [], log Z-hat [], grads like params).
    """
    def proposal_loss(p):
        z, log_w = batch_particles(model, p, key, batch, num_particles)
        return -jnp.mean(per_subset(proposal_objective, log_w)), (z, log_w)

    (_, (z, log_w)), grads = jax.value_and_grad(proposal_loss, has_aux=True)(params)
    z, log_w = jax.lax.stop_gradient((z, log_w))
    weights = jax.nn.softmax(log_w, axis=-1)

    def m_step(decoder):
        p = dict(params, decoder=decoder)

        def one(x, y, mask, z_s, w_s):
            return jnp.sum(w_s * jax.vmap(model.log_target(p, x, y, mask))(z_s))

        return -jnp.mean(_over_batch(one, 3)(batch.x, batch.y, batch.mask, z, weights))

    grads = dict(grads, decoder=jax.grad(m_step)(params["decoder"]))
    log_z_hat = jnp.mean(per_subset(objectives.iw, log_w))
    return -log_z_hat, jnp.mean(log_w), log_z_hat, grads


def split_gradients(model, params, key, batch: data.TrainBatch, num_particles: int,
                    model_objective, proposal_objective):
    """Gradients of -mean(model_objective) for the decoder and of -mean(proposal_objective)
    for everything else (encoder, sampler), from one forward pass and two backward passes.

    -> (loss [] = -mean model objective, elbo [], log Z-hat [], grads like params).
    """
    def all_log_w(p):
        return batch_particles(model, p, key, batch, num_particles)[1]  # [B, S, P]

    log_w, vjp = jax.vjp(all_log_w, params)

    def neg_mean(objective):
        return lambda lw: -jnp.mean(per_subset(objective, lw))

    loss, cot_model = jax.value_and_grad(neg_mean(model_objective))(log_w)
    (g_model,) = vjp(cot_model)
    (g_proposal,) = vjp(jax.grad(neg_mean(proposal_objective))(log_w))
    grads = dict(g_proposal, decoder=g_model["decoder"])
    return loss, jnp.mean(log_w), jnp.mean(per_subset(objectives.iw, log_w)), grads


def make_train_step(model, optimizer, config, mesh=None):
    """Jitted (state, base_key, x [T, N, d_x], y [T, N, d_y]) -> (state, metrics).

    With a `mesh`, the batch's task axis is split over its devices (params stay replicated).
    A non-finite loss or gradient leaves the state untouched (`state.guarded_update`).
    """
    return jax.jit(train_step_fn(model, optimizer, config, mesh), donate_argnums=0)


def make_train_steps(model, optimizer, config, mesh=None):
    """`make_train_step` fused: jitted (state, base_key, x, y, num_steps=n) -> (state,
    metrics [n]), n steps in one `lax.scan` (`state_lib.fused`)."""
    return state_lib.fused(train_step_fn(model, optimizer, config, mesh))


def train_step_fn(model, optimizer, config, mesh=None):
    """The un-jitted step of `make_train_step`."""
    tc = config.train
    name = tc.objective
    objective = objectives.REGISTRY[name]
    proposal = objectives.proposal_name(tc)
    proposal_objective = objectives.REGISTRY[proposal]
    min_context_size = tc.min_context_size

    def step_fn(state: state_lib.TrainState, base_key, x, y):
        key_batch, key_model = jax.random.split(jax.random.fold_in(base_key, state.step))
        batch = data.sample_train_batch(key_batch, x, y, tc.batch_size, tc.num_subsets,
                                        min_context_size)
        if mesh is not None:
            batch = sharding.shard_tasks(batch, mesh)

        def loss_fn(params):
            value, elbo, log_z_hat = batch_bounds(model, params, key_model, batch,
                                                  tc.num_particles, objective)
            return -jnp.mean(value), (jnp.mean(elbo), jnp.mean(log_z_hat))

        if name in objectives.EXPECTATION_MAXIMISATION:
            loss, elbo, log_z_hat, grads = em_gradients(
                model, state.params, key_model, batch, tc.num_particles, proposal_objective)
        elif proposal == name:
            (loss, (elbo, log_z_hat)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                state.params)
        else:
            loss, elbo, log_z_hat, grads = split_gradients(
                model, state.params, key_model, batch, tc.num_particles, objective,
                proposal_objective)
        grad_norm = optax.global_norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        metrics = dict(loss=loss, elbo=elbo, log_z_hat=log_z_hat, grad_norm=grad_norm)
        return state_lib.guarded_update(state, ok, params, opt_state), metrics

    return step_fn
