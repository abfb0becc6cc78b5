"""K = 0: reparameterised samples of q0 itself, the amortized-VI neural process baseline.

    z ~ q0 = N(mean, S S^T),   log w = log gamma(z) - log q0(z)

with S = diag(scale) for scale [d] or the lower-triangular scale [d, d].

No dynamics and nothing learned, so it does not run on the K-step driver.
"""

import distrax
import jax
import ml_collections

from amvi_jax import types
from amvi_jax.samplers import base


def default_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(num_steps=0))


def build(cfg) -> base.Sampler:
    if int(cfg.num_steps) != 0:
        raise ValueError(f"sampler 'gaussian': num_steps={cfg.num_steps} must be 0")

    def init(key, dim_z: int, dim_embedding: int = 0) -> dict:
        del key, dim_z, dim_embedding
        return {}

    def schedules(params, embedding) -> types.Schedules:
        del params, embedding
        return types.Schedules()

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int,
            start: types.Start | None = None):
        """-> SamplerOutput(z [P, d_z], log_w [P] = log gamma(z) - log q0(z), Schedules(), z).

        With `start`, z are its particles and log q0 its log density (mapped back to z).
        """
        del params
        base.check_inputs(q0_mean, q0_scale, embedding, num_particles, start)
        if start is not None:
            log_gamma_u, to_z = types.whiten(log_target, q0_mean, q0_scale)
            log_w = jax.vmap(log_gamma_u)(start.u) - start.log_q
            z = jax.vmap(to_z)(start.u)
            return types.SamplerOutput(z, log_w, types.Schedules(), z)
        q0 = (distrax.MultivariateNormalDiag(q0_mean, q0_scale) if q0_scale.ndim == 1
              else distrax.MultivariateNormalTri(q0_mean, q0_scale))
        z, log_q0 = q0.sample_and_log_prob(seed=key, sample_shape=(num_particles,))
        log_w = jax.vmap(log_target)(z) - log_q0
        return types.SamplerOutput(z, log_w, types.Schedules(), z)

    return base.Sampler("gaussian", ml_collections.FrozenConfigDict(cfg), init, run, schedules)
