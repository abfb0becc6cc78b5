"""The amortized model: encoder, decoder and sampler (docs/DESIGN.md sections 1-3).

    q0(z | D_C), e = encoder(D_C);   z_K, log w = sampler(q0, e, gamma_C)

`NeuralProcess` is a frozen bundle of stateless modules; every method is a pure function of a
params pytree {"encoder", "decoder", "sampler"} and works on ONE task (vmap outside).
"""

import dataclasses

import jax
import jax.numpy as jnp

from amvi_jax import encoders, networks, samplers
from amvi_jax.model import DecoderModel, decoder_from_config
from amvi_jax.samplers import mixture


@dataclasses.dataclass(frozen=True)
class NeuralProcess(DecoderModel):
    encoder: object  # a Flax module from amvi_jax.encoders
    decoder: networks.Decoder
    sampler: samplers.Sampler

    @property
    def dim_z(self) -> int:
        return self.encoder.dim_z

    @property
    def dim_embedding(self) -> int:
        return self.encoder.dim_embedding

    def init(self, key, dim_x: int, dim_y: int) -> dict:
        k_enc, k_dec, k_smp = jax.random.split(key, 3)
        x, y = jnp.zeros((1, dim_x)), jnp.zeros((1, dim_y))
        return dict(
            encoder=self.encoder.init(k_enc, x, y, jnp.ones((1,))),
            decoder=self.decoder.init(k_dec, x, jnp.zeros((self.dim_z,))),
            sampler=self.sampler.init(k_smp, self.dim_z, self.dim_embedding),
        )

    def encode(self, params, x, y, mask) -> encoders.EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] -> q0 (mean, scale; a mixture's log_weights) and
        embedding [d_e] (shapes: encoders.EncoderOutput)."""
        return self.encoder.apply(params["encoder"], x, y, mask)

    def sample(self, params, key, x, y, mask, num_particles: int) -> samplers.SamplerOutput:
        """Weighted particles for the posterior given the context `mask`.

        x [N, d_x], y [N, d_y], mask [N] -> SamplerOutput(z [P, d_z], log_w [P], schedules).
        """
        q0 = self.encode(params, x, y, mask)
        log_target = self.log_target(params, x, y, mask)
        if q0.log_weights is not None:
            return mixture.run(self.sampler, params["sampler"], key, log_target, q0.mean,
                               q0.scale, q0.log_weights, q0.embedding, num_particles)
        return self.sampler.run(params["sampler"], key, log_target, q0.mean, q0.scale,
                                q0.embedding, num_particles)

    def schedules(self, params, embedding=None) -> samplers.Schedules:
        """The sampler's schedules for task embedding `embedding` (default: zeros)."""
        if embedding is None:
            embedding = jnp.zeros((self.dim_embedding,))
        return self.sampler.schedules(params["sampler"], embedding)

    def with_sampler(self, sampler: samplers.Sampler) -> "NeuralProcess":
        """The same encoder and decoder with another sampler (e.g. K = 0 for pre-training, or
        the test-time `ais` sampler, which ignores the trained sampler's parameters)."""
        return dataclasses.replace(self, sampler=sampler)


def from_config(config, dim_y: int) -> NeuralProcess:
    """Builds the model described by `config.model` and `config.sampler`."""
    return NeuralProcess(encoder=encoders.from_config(config.model),
                         decoder=decoder_from_config(config.model, dim_y),
                         sampler=samplers.from_config(config.sampler))
