"""The meta-learning model: encoder, decoder, sampler and the per-task target density.

    z ~ N(0, I),  y_n | x_n, z ~ N(f_theta(x_n, z), sigma_y^2)
    log gamma_C(z) = log N(z; 0, I) + sum_n m_n log N(y_n; f_theta(x_n, z), sigma_y^2)

`NeuralProcess` is a frozen bundle of stateless modules; every method is a pure function of a
params pytree {"encoder", "decoder", "sampler"} and works on ONE task (vmap outside).
"""

import dataclasses

import chex
import jax
import jax.numpy as jnp

from amvi_jax import networks, samplers
from amvi_jax.samplers.base import log_normal_diag


def log_prior(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) for z [d_z] -> scalar."""
    return log_normal_diag(z, 0.0, 1.0)


@dataclasses.dataclass(frozen=True)
class NeuralProcess:
    encoder: networks.Encoder
    decoder: networks.Decoder
    sampler: samplers.Sampler

    @property
    def dim_z(self) -> int:
        return self.encoder.dim_z

    @property
    def dim_embedding(self) -> int:
        return 2 * self.encoder.dim_z

    def init(self, key, dim_x: int, dim_y: int) -> dict:
        k_enc, k_dec, k_smp = jax.random.split(key, 3)
        x, y = jnp.zeros((1, dim_x)), jnp.zeros((1, dim_y))
        return dict(
            encoder=self.encoder.init(k_enc, x, y, jnp.ones((1,))),
            decoder=self.decoder.init(k_dec, x, jnp.zeros((self.dim_z,))),
            sampler=self.sampler.init(k_smp, self.dim_z, self.dim_embedding),
        )

    def encode(self, params, x, y, mask) -> networks.EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] -> q0 (mean, scale [d_z]) and embedding."""
        return self.encoder.apply(params["encoder"], x, y, mask)

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
        return lambda z: log_prior(z) + self.log_likelihood(params, x, y, mask, z)

    def sample(self, params, key, x, y, mask, num_particles: int, sampler=None):
        """Weighted particles for the posterior given the context `mask`.

        x [N, d_x], y [N, d_y], mask [N] -> SamplerOutput(z [P, d_z], log_w [P], aux).
        `sampler` overrides the model's own (same params layout is not required for gaussian).
        """
        sampler = self.sampler if sampler is None else sampler
        q0 = self.encode(params, x, y, mask)
        return sampler.run(params["sampler"], key, self.log_target(params, x, y, mask),
                           q0.mean, q0.scale, q0.embedding, num_particles)


def from_config(config, dim_x: int, dim_y: int) -> NeuralProcess:
    """Builds the model described by `config.model` and `config.sampler`."""
    del dim_x  # the modules infer input widths at init
    m = config.model
    return NeuralProcess(
        encoder=networks.Encoder(dim_z=m.dim_z, hidden=tuple(m.encoder_hidden),
                                 aggregation=m.aggregation, activation=m.activation),
        decoder=networks.Decoder(dim_y=dim_y, hidden=tuple(m.decoder_hidden),
                                 activation=m.activation, learn_std=m.learn_std_y,
                                 std_y=m.std_y, std_y_min=m.std_y_min),
        sampler=samplers.from_config(config.sampler),
    )
