"""Training objectives: the log-weights of one (task, context subset) -> a bound to maximise.

An objective maps log w [P] (P weighted particles of one context subset, from any sampler) to a
scalar; the training step averages it over tasks and context subsets and ascends it
(docs/DESIGN.md section 4) by the objective's own gradient rule (`Objective.gradients`:
pathwise through the particles, or the M-step of `sinp`). A new objective is a bound, a rule
(usually `pathwise_gradients`) and one line in `REGISTRY`.

- `elbo`: mean_p log w_p <= log p(D_C), the bound of Volpp et al.
- `iw`: log (1/P) sum_p w_p, the importance-weighted bound (Burda et al. 2016):
  ELBO <= IW_P <= log p(D_C), tighter as P grows. Its gradient in the decoder is the
  self-normalised average sum_p softmax(log w)_p grad log w_p, an importance-sampling estimate
  of the gradient of log p(D_C): the model learns as if inference were exact when the weights
  are good. For the proposal (encoder, sampler) its signal-to-noise ratio falls as P grows
  (Rainforth et al. 2018), which is why `train.proposal_objective` can give the proposal
  another objective (e.g. `elbo`) while the decoder follows `train.objective`.
- `sinp`: expectation maximisation with self-normalised importance weights, after SI-NP
  (Wang, Federici and van Hoof, ICLR 2023). Its value is the IW bound; the decoder ascends
  the M-step surrogate sum_p sg(softmax(log w))_p log gamma_theta(sg(z_p)), i.e. the particles
  are held fixed. With K = 0 this is exactly the IW bound's decoder gradient; with a diffusion
  it drops the pathwise part (how z_p moves with the decoder's score, which is what explodes at
  large K), leaving the importance-sampling estimate of grad log p(D_C). The encoder and
  sampler ascend `train.proposal_objective`, `elbo` unless set (the M-step gives them nothing).
"""

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from amvi_jax import data
from amvi_jax.registry import Registry


def elbo(log_w: jax.Array) -> jax.Array:
    """mean_p log w_p: the (augmented) ELBO of one context subset. log_w [P] -> []."""
    return jnp.mean(log_w)


def iw(log_w: jax.Array) -> jax.Array:
    """logsumexp_p log w_p - log P: the importance-weighted bound. log_w [P] -> []."""
    return logsumexp(log_w) - jnp.log(log_w.shape[-1])


def over_batch(fn, num_per_subset: int):
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

    return over_batch(one, 2)(batch.x, batch.y, batch.mask, keys)


def per_subset(objective, log_w: jax.Array) -> jax.Array:
    """objective of every (task, subset): log_w [B, S, P] -> [B, S]."""
    return jax.vmap(jax.vmap(objective))(log_w)


def batch_bounds(model, params, key, batch: data.TrainBatch, num_particles: int, objective):
    """Per (task, subset) of a batch with mask [B, S, N]: (objective, ELBO, log Z-hat), each
    [B, S]."""
    log_w = batch_particles(model, params, key, batch, num_particles)[1]
    return (per_subset(objective, log_w), per_subset(elbo, log_w),
            per_subset(iw, log_w))


def em_gradients(model, params, key, batch: data.TrainBatch, num_particles: int,
                 bound, proposal_objective):
    """An expectation-maximisation step (objective `sinp`): the decoder ascends
    mean over (task, subset) of sum_p sg(softmax(log w))_p log gamma_theta(sg(z_p)), the encoder
    and sampler `proposal_objective`.

    -> (loss [] = -mean IW bound, elbo [], log Z-hat [], grads like params).
    """
    del bound  # the value reported is the IW bound; the decoder's rule is the M-step
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

        return -jnp.mean(over_batch(one, 3)(batch.x, batch.y, batch.mask, z, weights))

    grads = dict(grads, decoder=jax.grad(m_step)(params["decoder"]))
    log_z_hat = jnp.mean(per_subset(iw, log_w))
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
    return loss, jnp.mean(log_w), jnp.mean(per_subset(iw, log_w)), grads


def pathwise_gradients(model, params, key, batch: data.TrainBatch, num_particles: int,
                       bound, proposal_bound):
    """The gradient rule of `elbo` and `iw`: every parameter ascends the bound through the
    sampled particles (reparameterised, through the K diffusion steps); with another proposal
    bound, the decoder follows `bound` and encoder and sampler `proposal_bound`
    (`split_gradients`).

    -> (loss [] = -mean bound, elbo [], log Z-hat [], grads like params).
    """
    if proposal_bound is not bound:
        return split_gradients(model, params, key, batch, num_particles, bound, proposal_bound)

    def loss_fn(p):
        value, elbo_value, log_z_hat = batch_bounds(model, p, key, batch, num_particles, bound)
        return -jnp.mean(value), (jnp.mean(elbo_value), jnp.mean(log_z_hat))

    (loss, (elbo_value, log_z_hat)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    return loss, elbo_value, log_z_hat, grads


class Objective(NamedTuple):
    """A bound per (task, context subset) and the rule its gradients follow."""

    bound: Callable[[jax.Array], jax.Array]  # log_w [P] -> []
    # (model, params, key, batch, num_particles, bound, proposal_bound)
    #   -> (loss [], elbo [], log Z-hat [], grads like params)
    gradients: Callable
    default_proposal: str = ""  # what encoder and sampler ascend unless set ("": this one)


REGISTRY = Registry("objective", {
    "elbo": Objective(elbo, pathwise_gradients),
    "iw": Objective(iw, pathwise_gradients),
    # The M-step gives encoder and sampler no gradient: they follow the ELBO unless set.
    "sinp": Objective(iw, em_gradients, default_proposal="elbo"),
})
NAMES = REGISTRY.names


def proposal_name(train_config) -> str:
    """The objective the encoder and sampler ascend (`train.proposal_objective`, else the
    decoder's; `elbo` for an expectation-maximisation objective)."""
    name = train_config.objective
    return train_config.proposal_objective or REGISTRY[name].default_proposal or name
