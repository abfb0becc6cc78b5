"""Training objectives: the log-weights of one (task, context subset) -> a bound to maximise.

An objective maps log w [P] (P weighted particles of one context subset, from any sampler) to a
scalar; the training step averages it over tasks and context subsets and ascends it. The ELBO
mean_p log w_p <= log p(D_C) is the marginal-likelihood bound of Volpp et al. (docs/DESIGN.md
section 4). A new objective is one function and one line in `REGISTRY`.
"""

import jax
import jax.numpy as jnp

from amvi_jax.registry import Registry


def elbo(log_w: jax.Array) -> jax.Array:
    """mean_p log w_p: the (augmented) ELBO of one context subset. log_w [P] -> []."""
    return jnp.mean(log_w)


REGISTRY = Registry("objective", {"elbo": elbo})
NAMES = REGISTRY.names
