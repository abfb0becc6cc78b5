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
    diffusion run's rate over its own steps. With `train.diffusion_trains_decoder=False` the
    decoder stops learning where the diffusion stage starts."""
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
    chain = [optax.clip_by_global_norm(tc.grad_clip_norm), optax.adam(rate)]
    if config.sampler.name != "gaussian" and not tc.diffusion_trains_decoder:
        # Before the clip, so that the others' steps are what they would be without a
        # decoder; after Adam, whose momentum would move the decoder on after a warm-up stage.
        fixed = _fixed_decoder_from(tc.pretrain_steps)
        chain = [fixed, *chain, fixed]
    return optax.chain(*chain)


def _fixed_decoder_from(first: int) -> optax.GradientTransformation:
    """Zeroes the decoder's part of the updates from update `first` on: the diffusion stage
    then fits the posterior of a fixed model (train.diffusion_trains_decoder=False)."""

    def init(params):
        del params
        return optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32))

    def update(updates, state, params=None):
        del params
        fixed = state.count >= first
        decoder = jax.tree.map(lambda g: jnp.where(fixed, jnp.zeros_like(g), g),
                               updates["decoder"])
        return (dict(updates, decoder=decoder),
                optax.ScaleByScheduleState(count=optax.safe_int32_increment(state.count)))

    return optax.GradientTransformation(init, update)


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
    objective = objectives.REGISTRY[tc.objective]
    proposal = objectives.REGISTRY[objectives.proposal_name(tc)]

    def step_fn(state: state_lib.TrainState, base_key, x, y):
        key_batch, key_model = jax.random.split(jax.random.fold_in(base_key, state.step))
        batch = data.sample_train_batch(key_batch, x, y, tc.batch_size, tc.num_subsets,
                                        tc.min_context_size)
        if mesh is not None:
            batch = sharding.shard_tasks(batch, mesh)
        loss, elbo, log_z_hat, grads = objective.gradients(
            model, state.params, key_model, batch, tc.num_particles, objective.bound,
            proposal.bound)
        grad_norm = optax.global_norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        metrics = dict(loss=loss, elbo=elbo, log_z_hat=log_z_hat, grad_norm=grad_norm)
        return state_lib.guarded_update(state, ok, params, opt_state), metrics

    return step_fn
