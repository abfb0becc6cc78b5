"""The contract every meta-learning model meets, and the densities all of them share.

    z ~ p(z),  y_n | x_n, z ~ N(f_theta(x_n, z), sigma_y^2)
    log gamma_C(z) = log p(z) + sum_n m_n log N(y_n; f_theta(x_n, z), sigma_y^2)

Training, evaluation, plots and the AIS reference use a model only through `Model`; the
amortized neural process (`neural_process.NeuralProcess`) and GMM-NP
(`methods.gmm_np.GMMNeuralProcess`) both implement it. `DecoderModel` holds the pieces they
share: a decoder, the prior, the likelihood and the unnormalised task posterior. Every method
works on ONE task; vmap outside.
"""

from collections.abc import Callable
from typing import Protocol

import chex
import jax
import jax.numpy as jnp

from amvi_jax import networks
from amvi_jax.types import SamplerOutput, log_normal_diag


class Model(Protocol):
    """What the rest of the library needs from a model (shapes for one task)."""

    @property
    def dim_z(self) -> int: ...

    def init(self, key, dim_x: int, dim_y: int) -> dict:
        """-> params pytree."""

    def sample(self, params, key, x, y, mask, num_particles: int) -> SamplerOutput:
        """x [N, d_x], y [N, d_y], mask [N] -> weighted particles of p(z | context)."""

    def predict(self, params, x, z) -> tuple[jax.Array, jax.Array]:
        """x [N, d_x], z [d_z] -> (mean [N, d_y], std [d_y])."""

    def log_likelihood(self, params, x, y, mask, z) -> jax.Array:
        """-> sum_n mask_n log p(y_n | x_n, z) []."""

    def log_target(self, params, x, y, mask) -> Callable[[jax.Array], jax.Array]:
        """-> z [d_z] -> log gamma_C(z) []: the unnormalised task posterior."""


def param_shapes(model: Model, dim_x: int, dim_y: int):
    """`model.init`'s params tree as shapes and dtypes, nothing computed: the template a
    checkpoint's parameters are restored into."""
    return jax.eval_shape(lambda key: model.init(key, dim_x, dim_y), jax.random.PRNGKey(0))


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) for z [d_z] -> scalar."""
    return log_normal_diag(z, 0.0, 1.0)


class DecoderModel:
    """Mixin for dataclass models with a `decoder` (networks.Decoder) field.

    The prior is N(0, I) unless a model overrides `log_prior`; params["decoder"] holds the
    decoder's parameters.
    """

    decoder: networks.Decoder

    def log_prior(self, params, z: jax.Array) -> jax.Array:
        """log p(z): z [d_z] -> scalar."""
        del params
        return standard_normal_log_prob(z)

    def predict(self, params, x, z) -> tuple[jax.Array, jax.Array]:
        """x [N, d_x], z [d_z] -> (mean [N, d_y], std [d_y])."""
        return self.decoder.apply(params["decoder"], x, z)

    def log_likelihood(self, params, x, y, mask, z) -> jax.Array:
        """sum_n mask_n log p(y_n | x_n, z): x [N, d_x], y [N, d_y], mask [N], z [d_z] -> []."""
        chex.assert_rank([x, y, mask, z], [2, 2, 1, 1])
        mean, std = self.predict(params, x, z)
        return jnp.sum(mask * log_normal_diag(y, mean, std**2))

    def log_target(self, params, x, y, mask):
        """The unnormalised task posterior gamma_C as a function z [d_z] -> scalar."""
        return lambda z: self.log_prior(params, z) + self.log_likelihood(params, x, y, mask, z)


def decoder_from_config(model_config, dim_y: int) -> networks.Decoder:
    """The decoder that `config.model` describes (shared by every method): a coordinate MLP,
    or with `model.grid_shape` = (H, W) an image decoder (`networks.GridDecoder`)."""
    m = model_config
    if tuple(m.grid_shape):
        return networks.GridDecoder(
            dim_y=dim_y, grid_shape=tuple(m.grid_shape), hidden=tuple(m.decoder_hidden),
            activation=m.activation, learn_std=m.learn_std_y, std_y=m.std_y,
            std_y_min=m.std_y_min, heteroscedastic=m.heteroscedastic_std)
    return networks.Decoder(dim_y=dim_y, hidden=tuple(m.decoder_hidden), activation=m.activation,
                            learn_std=m.learn_std_y, std_y=m.std_y, std_y_min=m.std_y_min,
                            heteroscedastic=m.heteroscedastic_std,
                            x_frequencies=m.x_frequencies)
