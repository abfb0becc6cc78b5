"""Stateless Flax linen modules: encoder, decoder and the sampler's score/control network.

Every module works on ONE task (or one particle); batching is done by `jax.vmap` outside, so
shapes in docstrings never carry a batch axis. Parameters are plain pytrees returned by `init`.
"""

import math
from collections.abc import Sequence
from typing import NamedTuple

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

AGGREGATIONS = ("bayesian", "mean")

# Lower bound on per-point and prior variances of the Bayesian aggregator: keeps the q0
# precision finite when a point network outputs a huge log-variance early in training.
_MIN_VARIANCE = 1e-4


class MLP(nn.Module):
    """Plain MLP. `zero_init_last` makes the module output exactly zero at initialisation."""

    features: Sequence[int]
    activation: str = "gelu"
    zero_init_last: bool = False

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        act = getattr(nn, self.activation)
        for width in self.features[:-1]:
            h = act(nn.Dense(width)(h))
        last_init = nn.initializers.zeros if self.zero_init_last else nn.initializers.lecun_normal()
        return nn.Dense(self.features[-1], kernel_init=last_init)(h)


class EncoderOutput(NamedTuple):
    """q0(z | D_C) = N(mean, diag(scale^2)) and the task embedding e."""

    mean: jax.Array  # [d_z]
    scale: jax.Array  # [d_z]
    embedding: jax.Array  # [2 d_z] = [mean, log scale]


class Encoder(nn.Module):
    """Permutation-invariant context encoder.

    `bayesian` (Volpp et al. 2021): every point gives a latent observation r_n with variance
    s_n^2; the posterior over z of a Gaussian prior N(mu0, s0^2) given those observations is q0.
    An empty context therefore returns N(mu0, s0^2) with no special case.
    `mean`: masked mean of per-point features, then an MLP to (mean, log scale).
    """

    dim_z: int
    hidden: Sequence[int] = (64, 64)
    aggregation: str = "bayesian"
    activation: str = "gelu"

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array, mask: jax.Array) -> EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] (1 = context point) -> EncoderOutput."""
        chex.assert_rank([x, y, mask], [2, 2, 1])
        chex.assert_equal_shape_prefix([x, y, mask], 1)
        m = mask[:, None]
        xy = jnp.concatenate([x, y], axis=-1)
        if self.aggregation == "bayesian":
            out = MLP((*self.hidden, 2 * self.dim_z), self.activation)(xy)
            r, raw_var = jnp.split(out, 2, axis=-1)
            var_n = nn.softplus(raw_var) + _MIN_VARIANCE
            mu0 = self.param("mu0", nn.initializers.zeros, (self.dim_z,))
            raw_var0 = self.param("raw_var0", nn.initializers.constant(_softplus_inv(1.0)),
                                  (self.dim_z,))
            var0 = nn.softplus(raw_var0) + _MIN_VARIANCE
            precision = 1.0 / var0 + jnp.sum(m / var_n, axis=0)
            var = 1.0 / precision
            mean = mu0 + var * jnp.sum(m * (r - mu0) / var_n, axis=0)
            log_scale = 0.5 * jnp.log(var)
        elif self.aggregation == "mean":
            h = MLP(self.hidden, self.activation)(xy)
            r = jnp.sum(m * h, axis=0) / jnp.maximum(jnp.sum(m), 1.0)
            out = MLP((*self.hidden, 2 * self.dim_z), self.activation)(r)
            mean, log_scale = jnp.split(out, 2, axis=-1)
            # Bounded log-scale: an unbounded exp lets one bad step blow up q0.
            log_scale = 5.0 * jnp.tanh(log_scale / 5.0)
        else:
            raise ValueError(f"unknown aggregation {self.aggregation!r}; valid: {AGGREGATIONS}")
        scale = jnp.exp(log_scale)
        return EncoderOutput(mean, scale, jnp.concatenate([mean, log_scale]))


class Decoder(nn.Module):
    """f_theta(x, z): MLP on [x, z] -> mean of y, and the output noise std.

    `std_y` fixed, or learned as std_y_min + softplus(raw) so it never collapses below the floor.
    """

    dim_y: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "gelu"
    learn_std: bool = True
    std_y: float = 0.25
    std_y_min: float = 0.1

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x [N, d_x], z [d_z] -> (mean [N, d_y], std [d_y])."""
        chex.assert_rank([x, z], [2, 1])
        zz = jnp.broadcast_to(z, (x.shape[0], z.shape[0]))
        mean = MLP((*self.hidden, self.dim_y), self.activation)(jnp.concatenate([x, zz], -1))
        if self.learn_std:
            init = _softplus_inv(max(self.std_y - self.std_y_min, 1e-3))
            raw = self.param("raw_std", nn.initializers.constant(init), (self.dim_y,))
            std = self.std_y_min + nn.softplus(raw)
        else:
            std = jnp.full((self.dim_y,), self.std_y, mean.dtype)
        return mean, std


def sinusoidal_embedding(t: jax.Array, dim: int = 16) -> jax.Array:
    """t scalar in [0, 1] -> [dim] features at geometric frequencies 1..1000."""
    freqs = jnp.exp(jnp.linspace(0.0, jnp.log(1000.0), dim // 2))
    return jnp.concatenate([jnp.sin(t * freqs), jnp.cos(t * freqs)])


class ScoreNetwork(nn.Module):
    """r_psi(u, [rho], t, e, g) -> [d_z]; last layer zero so the network starts as exactly 0.

    Inputs: position u [d_z], optional momentum rho [d_z] (or empty), normalised time t scalar,
    task embedding e [d_e] (may be empty) and the clipped, stop-gradient target score g [d_z].
    """

    dim_z: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "gelu"
    time_features: int = 16

    @nn.compact
    def __call__(self, u, rho, t, e, g) -> jax.Array:
        h = jnp.concatenate([u, rho, sinusoidal_embedding(t, self.time_features), e, g])
        return MLP((*self.hidden, self.dim_z), self.activation, zero_init_last=True)(h)


def _softplus_inv(v: float) -> float:
    return math.log(math.expm1(v))
