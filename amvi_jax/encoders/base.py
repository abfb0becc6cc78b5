"""What every context encoder is and returns, and the input checks they share."""

from collections.abc import Sequence
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


class EncoderOutput(NamedTuple):
    """q0(z | D_C) = N(mean, S S^T) and the task embedding e.

    scale is S: a vector [d_z] (S = diag(scale)) or, with a full-covariance q0, a lower-
    triangular factor [d_z, d_z] with a positive diagonal. The samplers accept both.
    """

    mean: jax.Array  # [d_z]
    scale: jax.Array  # [d_z] or [d_z, d_z]
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
    full_covariance: bool = False  # q0 with a lower-triangular scale factor (see `output`)

    @property
    def dim_embedding(self) -> int:
        return 2 * self.dim_z


def check_context(x: jax.Array, y: jax.Array, mask: jax.Array) -> jax.Array:
    """x [N, d_x], y [N, d_y], mask [N] -> the per-point inputs [x, y] of shape [N, d_x + d_y]."""
    chex.assert_rank([x, y, mask], [2, 2, 1])
    chex.assert_equal_shape_prefix([x, y, mask], 1)
    return jnp.concatenate([x, y], axis=-1)


Q0_COVARIANCES = ("diag", "full")


def common_options(model_config) -> dict:
    """The constructor arguments every encoder takes from `config.model`."""
    m = model_config
    return dict(dim_z=m.dim_z, hidden=tuple(m.encoder_hidden), activation=m.activation,
                tie_prior=bool(m.get("tie_prior", False)),
                full_covariance=m.get("q0_covariance", "diag") == "full")


def output(encoder: ContextEncoder, mean, log_scale, embedding, mask) -> EncoderOutput:
    """The encoder's EncoderOutput; call from inside its compact `__call__`.

    With `encoder.full_covariance` the scale is the lower-triangular factor
    L = (I + C) diag(exp(log_scale)), C strictly lower triangular from a zero-initialised linear
    map of the embedding (a submodule named "correlation"): q0 starts diagonal, its
    log-determinant stays sum(log_scale), and with `tie_prior` an empty context keeps C = 0.
    """
    scale = jnp.exp(log_scale)
    d = encoder.dim_z
    if encoder.full_covariance and d > 1:
        off = nn.Dense(d * (d - 1) // 2, kernel_init=nn.initializers.zeros,
                       name="correlation")(embedding)
        if encoder.tie_prior:
            off = jnp.where(jnp.sum(mask) == 0, 0.0, off)
        rows, cols = jnp.tril_indices(d, -1)
        scale = jnp.eye(d, dtype=scale.dtype).at[rows, cols].set(off) * scale[None, :]
    return EncoderOutput(mean, scale, embedding)


def prior_if_empty(mask: jax.Array, mean: jax.Array, log_scale: jax.Array):
    """(mean, log_scale) [d_z], replaced by the model prior's (0, 0) when mask [N] is all 0."""
    empty = jnp.sum(mask) == 0
    return jnp.where(empty, 0.0, mean), jnp.where(empty, 0.0, log_scale)


def bounded_log_scale(raw: jax.Array) -> jax.Array:
    """5 tanh(raw / 5): an unbounded exp lets one bad step blow up q0."""
    return 5.0 * jnp.tanh(raw / 5.0)
