"""What every context encoder is and returns, and the input checks they share."""

from collections.abc import Sequence
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


class EncoderOutput(NamedTuple):
    """q0(z | D_C) = N(mean, diag(scale^2)) and the task embedding e."""

    mean: jax.Array  # [d_z]
    scale: jax.Array  # [d_z]
    embedding: jax.Array  # [d_e], d_e = the encoder's `dim_embedding`


class ContextEncoder(nn.Module):
    """Base of the encoders: the fields every one takes, and its embedding size.

    Subclasses implement `__call__(x [N, d_x], y [N, d_y], mask [N]) -> EncoderOutput` and
    override `dim_embedding` if their embedding is not [mean, log scale].
    """

    dim_z: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "gelu"
    tie_prior: bool = False  # an empty context gives the model prior N(0, I) exactly

    @property
    def dim_embedding(self) -> int:
        return 2 * self.dim_z


def check_context(x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """x [N, d_x], y [N, d_y], mask [N] -> the per-point inputs [x, y] of shape [N, d_x + d_y]."""
    chex.assert_rank([x, y, mask], [2, 2, 1])
    chex.assert_equal_shape_prefix([x, y, mask], 1)
    return jnp.concatenate([x, y], axis=-1)


def common_options(model_config) -> dict:
    """The constructor arguments every encoder takes from `config.model`."""
    m = model_config
    return dict(dim_z=m.dim_z, hidden=tuple(m.encoder_hidden), activation=m.activation,
                tie_prior=bool(m.get("tie_prior", False)))


def prior_if_empty(mask: jax.Array, mean: jax.Array, log_scale: jax.Array):
    """(mean, log_scale) [d_z], replaced by the model prior's (0, 0) when mask [N] is all 0."""
    empty = jnp.sum(mask) == 0
    return jnp.where(empty, 0.0, mean), jnp.where(empty, 0.0, log_scale)


def bounded_log_scale(raw: jax.Array) -> jax.Array:
    """5 tanh(raw / 5): an unbounded exp lets one bad step blow up q0."""
    return 5.0 * jnp.tanh(raw / 5.0)
