"""What every context encoder is and returns, and the input checks they share."""

from collections.abc import Sequence
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from amvi_jax.networks import fourier_features


class EncoderOutput(NamedTuple):
    """q0(z | D_C) = N(mean, S S^T) and the task embedding e.

    scale is S: a vector [d_z] (S = diag(scale)) or, with a full-covariance q0, a lower-
    triangular factor [d_z, d_z] with a positive diagonal. The samplers accept both.

    A mixture q0 = sum_m pi_m N(mean_m, S_m S_m^T) (`model.q0_components` = M > 1) has a leading
    component axis on mean [M, d_z] and scale [M, d_z] or [M, d_z, d_z], and
    log_weights [M] = log pi (normalised); for one Gaussian log_weights is None.
    """

    mean: jax.Array  # [d_z] or [M, d_z]
    scale: jax.Array  # [d_z], [d_z, d_z], [M, d_z] or [M, d_z, d_z]
    embedding: jax.Array  # [d_e], d_e = the encoder's `dim_embedding`
    log_weights: jax.Array | None = None  # [M]: mixture q0 only


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
    num_components: int = 1  # > 1: a mixture q0 (see `output`)
    x_frequencies: int = 0  # L of `networks.fourier_features` on x (0: raw x)

    @property
    def dim_embedding(self) -> int:
        return 2 * self.dim_z


def check_context(x: jax.Array, y: jax.Array, mask: jax.Array,
                  x_frequencies: int = 0) -> jax.Array:
    """x [N, d_x], y [N, d_y], mask [N] -> the per-point inputs [features(x), y], [N, d_f + d_y]
    (`networks.fourier_features` with L = x_frequencies)."""
    chex.assert_rank([x, y, mask], [2, 2, 1])
    chex.assert_equal_shape_prefix([x, y, mask], 1)
    return jnp.concatenate([fourier_features(x, x_frequencies), y], axis=-1)


Q0_COVARIANCES = ("diag", "full")


def common_options(model_config) -> dict:
    """The constructor arguments every encoder takes from `config.model`."""
    m = model_config
    return dict(dim_z=m.dim_z, hidden=tuple(m.encoder_hidden), activation=m.activation,
                tie_prior=bool(m.tie_prior), full_covariance=m.q0_covariance == "full",
                num_components=int(m.q0_components), x_frequencies=int(m.x_frequencies))


def output(encoder: ContextEncoder, mean, log_scale, embedding, mask) -> EncoderOutput:
    """The encoder's EncoderOutput; call from inside its compact `__call__`.

    With `encoder.full_covariance` the scale is the lower-triangular factor
    L = (I + C) diag(exp(log_scale)), C strictly lower triangular from a zero-initialised linear
    map of the embedding (a submodule named "correlation"): q0 starts diagonal, its
    log-determinant stays sum(log_scale), and with `tie_prior` an empty context keeps C = 0.

    With `encoder.num_components` = M > 1, q0 is a mixture around the encoder's Gaussian: from
    the embedding, linear heads give component m the mean mean + exp(log_scale) * o_m, the log
    scale log_scale + s_m and the weight softmax(a)_m. s and a start at 0 (equal widths and
    weights); o starts at a fixed random spread of about one q0 standard deviation, since
    identical components would get identical gradients and never separate. With `tie_prior` an
    empty context gives M copies of N(0, I), i.e. the prior exactly.
    """
    d, num = encoder.dim_z, encoder.num_components
    empty = jnp.sum(mask) == 0
    log_weights = None
    if num > 1:
        offsets = nn.Dense(num * d, kernel_init=nn.initializers.zeros,
                           bias_init=nn.initializers.normal(1.0), name="component_offsets")
        widths = nn.Dense(num * d, kernel_init=nn.initializers.zeros, name="component_scales")
        logits = nn.Dense(num, kernel_init=nn.initializers.zeros, name="component_logits")
        o = offsets(embedding).reshape(num, d)
        s = widths(embedding).reshape(num, d)
        a = logits(embedding)
        if encoder.tie_prior:
            o, s, a = (jnp.where(empty, 0.0, v) for v in (o, s, a))
        mean = mean[None, :] + jnp.exp(log_scale)[None, :] * o
        log_scale = log_scale[None, :] + s
        log_weights = jax.nn.log_softmax(a)
    scale = jnp.exp(log_scale)
    if encoder.full_covariance and d > 1:
        off = nn.Dense(d * (d - 1) // 2, kernel_init=nn.initializers.zeros,
                       name="correlation")(embedding)
        if encoder.tie_prior:
            off = jnp.where(empty, 0.0, off)
        rows, cols = jnp.tril_indices(d, -1)
        scale = jnp.eye(d, dtype=scale.dtype).at[rows, cols].set(off) * scale[..., None, :]
    return EncoderOutput(mean, scale, embedding, log_weights)


def prior_if_empty(mask: jax.Array, mean: jax.Array, log_scale: jax.Array):
    """(mean, log_scale) [d_z], replaced by the model prior's (0, 0) when mask [N] is all 0."""
    empty = jnp.sum(mask) == 0
    return jnp.where(empty, 0.0, mean), jnp.where(empty, 0.0, log_scale)


def bounded_log_scale(raw: jax.Array) -> jax.Array:
    """5 tanh(raw / 5): an unbounded exp lets one bad step blow up q0."""
    return 5.0 * jnp.tanh(raw / 5.0)
