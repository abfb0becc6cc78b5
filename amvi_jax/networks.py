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


def fourier_features(x: jax.Array, num_frequencies: int) -> jax.Array:
    """x [N, d_x] -> [x, sin(2^k pi x), cos(2^k pi x) for k < L], [N, d_x (1 + 2 L)].

    An MLP on raw coordinates learns low frequencies first (spectral bias) and draws images as
    blobs for thousands of steps; these fixed features let it place edges at once (Tancik et
    al. 2020). L = 0 is the identity.
    """
    if num_frequencies == 0:
        return x
    angles = x[..., None] * (jnp.pi * 2.0 ** jnp.arange(num_frequencies))  # [N, d_x, L]
    return jnp.concatenate([x, jnp.sin(angles).reshape(x.shape[0], -1),
                            jnp.cos(angles).reshape(x.shape[0], -1)], -1)


class _Likelihood(nn.Module):
    """The fields every decoder shares: the output size, the MLP, and the noise std."""

    dim_y: int
    hidden: Sequence[int] = (64, 64)
    activation: str = "gelu"
    learn_std: bool = True
    std_y: float = 0.25
    std_y_min: float = 0.1
    heteroscedastic: bool = False

    @property
    def raw_std_init(self) -> float:
        """The raw value whose std_y_min + softplus is std_y: every std starts there."""
        return softplus_inv(max(self.std_y - self.std_y_min, 1e-3))

    def shared_std(self, dtype) -> jax.Array:
        """One std per output dimension [d_y]: learned above the floor, or fixed at std_y.
        Call from inside the subclass's compact `__call__` (it may create `raw_std`)."""
        if self.learn_std:
            raw = self.param("raw_std", nn.initializers.constant(self.raw_std_init),
                             (self.dim_y,))
            return self.std_y_min + nn.softplus(raw)
        return jnp.full((self.dim_y,), self.std_y, dtype)


class Decoder(_Likelihood):
    """f_theta(x, z): MLP on [x, z] -> mean of y, and the output noise std.

    `std_y` fixed, or learned as std_y_min + softplus(raw) so it never collapses below the floor;
    `heteroscedastic`: raw is a second output of the MLP, one std per point (initialised near
    std_y), as the NP image-completion models have it: an image's background is certain, its
    strokes' edges are not, and one shared std must pay for the edges on every pixel.
    """

    x_frequencies: int = 0  # L of `fourier_features` on x (0: raw x)

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x [N, d_x], z [d_z] -> (mean [N, d_y], std [d_y], or [N, d_y] if heteroscedastic)."""
        chex.assert_rank([x, z], [2, 1])
        zz = jnp.broadcast_to(z, (x.shape[0], z.shape[0]))
        inputs = jnp.concatenate([fourier_features(x, self.x_frequencies), zz], -1)
        if self.heteroscedastic:
            h = getattr(nn, self.activation)(MLP(tuple(self.hidden), self.activation)(inputs))
            # A zero-initialised std head: every point starts at std_y exactly.
            raw = nn.Dense(self.dim_y, kernel_init=nn.initializers.zeros, name="std_head",
                           bias_init=nn.initializers.constant(self.raw_std_init))(h)
            return nn.Dense(self.dim_y, name="mean_head")(h), self.std_y_min + nn.softplus(raw)
        mean = MLP((*self.hidden, self.dim_y), self.activation)(inputs)
        return mean, self.shared_std(mean.dtype)


class GridDecoder(_Likelihood):
    """Images on a fixed H x W grid: an MLP maps z to every pixel's mean (and, heteroscedastic,
    std) at once, and x in [-1, 1]^2 (`data.images.pixel_coordinates`) reads its pixel.

    The decoder of a VAE with missing pixels: the same model p(y | x, z) as `Decoder`, with the
    image's shape as prior knowledge. A coordinate MLP must learn to draw a digit from (x, z)
    and, trained for minutes, draws one blurred blob whatever z is; this one gives each pixel
    its own output from the start, and costs one MLP call per z instead of one per point.
    """

    grid_shape: Sequence[int] = ()  # (H, W), required

    @nn.compact
    def __call__(self, x: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """x [N, 2] pixel coordinates, z [d_z] -> (mean [N, d_y], std [d_y] or [N, d_y])."""
        chex.assert_rank([x, z], [2, 1])
        if len(self.grid_shape) != 2:
            raise ValueError(f"GridDecoder needs grid_shape = (H, W), got {self.grid_shape!r}")
        height, width = self.grid_shape
        pixels = height * width
        heads = 2 if self.heteroscedastic else 1
        out = MLP((*self.hidden, heads * pixels * self.dim_y), self.activation)(z)
        out = out.reshape(pixels, heads * self.dim_y)
        rows = jnp.clip(jnp.rint((x[:, 0] + 1) / 2 * (height - 1)), 0, height - 1)
        cols = jnp.clip(jnp.rint((x[:, 1] + 1) / 2 * (width - 1)), 0, width - 1)
        picked = out[(rows * width + cols).astype(jnp.int32)]  # [N, heads * d_y]
        if self.heteroscedastic:
            return (picked[:, :self.dim_y],
                    self.std_y_min + nn.softplus(picked[:, self.dim_y:] + self.raw_std_init))
        return picked, self.shared_std(picked.dtype)


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
