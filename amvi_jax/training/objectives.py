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


REGISTRY = Registry("objective", {"elbo": elbo, "iw": iw})
NAMES = REGISTRY.names
