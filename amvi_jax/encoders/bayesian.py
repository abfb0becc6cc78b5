"""Bayesian context aggregation (Volpp et al., ICLR 2021).

Every context point gives a latent observation r_n with variance s_n^2 (a per-point MLP on
[x_n, y_n]); q0 is the posterior of a Gaussian prior N(mu0, s0^2) given those observations:

    1 / var = 1 / s0^2 + sum_n m_n / s_n^2,    mean = mu0 + var sum_n m_n (r_n - mu0) / s_n^2

An empty context returns N(mu0, s0^2) with no special case; with `tie_prior` the prior is the
model's N(0, I) itself (not learned), so q0 of an empty context is the exact posterior.
Embedding: [mean, log scale].
"""

import flax.linen as nn
import jax
import jax.numpy as jnp

from amvi_jax.encoders.base import ContextEncoder, EncoderOutput, check_context, output
from amvi_jax.networks import MLP, softplus_inv

# Lower bound on per-point and prior variances: keeps the q0 precision finite when a point
# network outputs a huge log-variance early in training.
MIN_VARIANCE = 1e-4


class BayesianAggregator(ContextEncoder):

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array, mask: jax.Array) -> EncoderOutput:
        """x [N, d_x], y [N, d_y], mask [N] (1 = context point) -> EncoderOutput."""
        xy = check_context(x, y, mask, self.x_frequencies)
        m = mask[:, None]
        out = MLP((*self.hidden, 2 * self.dim_z), self.activation)(xy)
        r, raw_var = jnp.split(out, 2, axis=-1)
        var_n = nn.softplus(raw_var) + MIN_VARIANCE
        if self.tie_prior:  # condition the model prior N(0, I) itself
            mu0, var0 = jnp.zeros((self.dim_z,)), jnp.ones((self.dim_z,))
        else:
            mu0 = self.param("mu0", nn.initializers.zeros, (self.dim_z,))
            raw_var0 = self.param("raw_var0", nn.initializers.constant(softplus_inv(1.0)),
                                  (self.dim_z,))
            var0 = nn.softplus(raw_var0) + MIN_VARIANCE
        precision = 1.0 / var0 + jnp.sum(m / var_n, axis=0)
        var = 1.0 / precision
        mean = mu0 + var * jnp.sum(m * (r - mu0) / var_n, axis=0)
        log_scale = 0.5 * jnp.log(var)
        return output(self, mean, log_scale, jnp.concatenate([mean, log_scale]), mask)
