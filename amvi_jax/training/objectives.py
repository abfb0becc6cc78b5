"""Training objectives: the log-weights of one (task, context subset) -> a bound to maximise.

An objective maps log w [P] (P weighted particles of one context subset, from any sampler) to a
scalar; the training step averages it over tasks and context subsets and ascends it
(docs/DESIGN.md section 4). A new objective is one function and one line in `REGISTRY`.

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

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from amvi_jax.registry import Registry


def elbo(log_w: jax.Array) -> jax.Array:
    """mean_p log w_p: the (augmented) ELBO of one context subset. log_w [P] -> []."""
    return jnp.mean(log_w)


def iw(log_w: jax.Array) -> jax.Array:
    """logsumexp_p log w_p - log P: the importance-weighted bound. log_w [P] -> []."""
    return logsumexp(log_w) - jnp.log(log_w.shape[-1])


REGISTRY = Registry("objective", {"elbo": elbo, "iw": iw, "sinp": iw})
NAMES = REGISTRY.names
# Objectives whose decoder gradient is the M-step one with fixed particles (training/step.py).
EXPECTATION_MAXIMISATION = ("sinp",)


def proposal_name(train_config) -> str:
    """The objective the encoder and sampler ascend (`train.proposal_objective`, else the
    decoder's; `elbo` for an expectation-maximisation objective)."""
    name = train_config.objective
    default = "elbo" if name in EXPECTATION_MAXIMISATION else name
    return train_config.proposal_objective or default
