"""Attention context encoder (set-transformer style; Lee et al. 2019, Kim et al. 2019).

    h_n = MLP([x_n, y_n])                                   per-point features [W]
    h  <- LayerNorm(h + MHA(h, [null, h_C]));  h <- LayerNorm(h + MLP(h))    x num_layers
    r   = MHA(seed, [null, h_C])                            pooling by attention [W]
    (mean, log scale) = MLP(r),   embedding e = [mean, log scale, r]

Keys and values are the context points only (mask), plus one learned `null` token per layer,
which keeps every softmax defined when the context is empty (q0 is then a learned function of
the null tokens alone, the encoder's prior). Rows of non-context points are zeroed after every
block, so whatever they hold cannot reach the output.
"""


import flax.linen as nn
import jax
import jax.numpy as jnp

from amvi_jax import checks
from amvi_jax.encoders.base import (
    ContextEncoder,
    EncoderOutput,
    bounded_log_scale,
    check_context,
    common_options,
    output,
    prior_if_empty,
)
from amvi_jax.networks import MLP


class _Attend(nn.Module):
    """Multi-head attention of queries [Q, W] over [null, context rows of h] -> [Q, W]."""

    num_heads: int

    @nn.compact
    def __call__(self, queries: jax.Array, h: jax.Array, mask: jax.Array) -> jax.Array:
        width = h.shape[-1]
        null = self.param("null", nn.initializers.normal(1.0), (1, width))
        keys = jnp.concatenate([null, h], axis=0)  # [N + 1, W]
        key_mask = jnp.concatenate([jnp.ones((1,), mask.dtype), mask]) > 0
        attn_mask = jnp.broadcast_to(key_mask, (1, queries.shape[0], keys.shape[0]))
        return nn.MultiHeadDotProductAttention(num_heads=self.num_heads, qkv_features=width,
                                               out_features=width)(queries, keys, mask=attn_mask)


class AttentionAggregator(ContextEncoder):
    num_heads: int = 4
    num_layers: int = 2

    @property
    def dim_embedding(self) -> int:
        return 2 * self.dim_z + self.hidden[-1]

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array, mask: jax.Array) -> EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] (1 = context point) -> EncoderOutput."""
        xy = check_context(x, y, mask, self.x_frequencies)
        width = self.hidden[-1]
        in_context = mask[:, None] > 0

        def only_context(h):
            return jnp.where(in_context, h, 0.0)

        h = only_context(MLP(self.hidden, self.activation)(xy))
        for _ in range(self.num_layers):
            h = nn.LayerNorm()(h + _Attend(self.num_heads)(h, h, mask))
            h = only_context(nn.LayerNorm()(h + MLP((width, width), self.activation)(h)))
        seed = self.param("seed", nn.initializers.normal(1.0), (1, width))
        r = _Attend(self.num_heads)(seed, h, mask)[0]
        out = MLP((width, 2 * self.dim_z), self.activation)(r)
        mean, log_scale = jnp.split(out, 2, axis=-1)
        log_scale = bounded_log_scale(log_scale)
        if self.tie_prior:
            mean, log_scale = prior_if_empty(mask, mean, log_scale)
        return output(self, mean, log_scale, jnp.concatenate([mean, log_scale, r]), mask)


def from_config(model_config) -> AttentionAggregator:
    """From `config.model`: encoder_hidden (its last width is the model width),
    attention_heads (must divide it) and attention_layers."""
    m = model_config
    checks.positive_int(dict(model=m), "model.attention_heads")
    checks.positive_int(dict(model=m), "model.attention_layers")
    if m.encoder_hidden[-1] % m.attention_heads:
        checks.fail("model.attention_heads", m.attention_heads,
                    f"must divide the attention width model.encoder_hidden[-1]="
                    f"{m.encoder_hidden[-1]}")
    return AttentionAggregator(**common_options(m), num_heads=m.attention_heads,
                               num_layers=m.attention_layers)
