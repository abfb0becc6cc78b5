"""Mean context aggregation (the neural process of Garnelo et al. 2018).

A per-point MLP h_n on [x_n, y_n], the masked mean r = sum_n m_n h_n / max(sum_n m_n, 1), then
an MLP to (mean, log scale) with a bounded log scale. Embedding: [mean, log scale].
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from amvi_jax.encoders.base import (
    ContextEncoder,
    EncoderOutput,
    bounded_log_scale,
    check_context,
    output,
    prior_if_empty,
)
from amvi_jax.networks import MLP


class MeanAggregator(ContextEncoder):

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array, mask: jax.Array) -> EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] (1 = context point) -> EncoderOutput."""
        xy = check_context(x, y, mask, self.x_frequencies)
        m = mask[:, None]
        h = MLP(self.hidden, self.activation)(xy)
        r = jnp.sum(m * h, axis=0) / jnp.maximum(jnp.sum(m), 1.0)
        out = MLP((*self.hidden, 2 * self.dim_z), self.activation)(r)
        mean, log_scale = jnp.split(out, 2, axis=-1)
        log_scale = bounded_log_scale(log_scale)
        if self.tie_prior:
            mean, log_scale = prior_if_empty(mask, mean, log_scale)
        return output(self, mean, log_scale, jnp.concatenate([mean, log_scale]), mask)
