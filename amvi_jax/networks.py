"""Stateless Flax linen modules shared by the model pieces: MLP, decoder, score/control network.

Context encoders live in `amvi_jax.encoders`, one module each.

Every module works on ONE task (or one particle); batching is done by `jax.vmap` outside, so
shapes in docstrings never carry a batch axis. Parameters are plain pytrees returned by `init`.
"""

import math
from collections.abc import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp


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
            init = softplus_inv(max(self.std_y - self.std_y_min, 1e-3))
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


def softplus_inv(v: float) -> float:
    return math.log(math.expm1(v))
