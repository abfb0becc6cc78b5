"""A mixture q0 for every sampler: stratified starts, an exact log q0, unbiased weights.

    q0(z) = sum_m pi_m N(z; mean_m, S_m S_m^T),   m = 1..M

The P particles are split into M strata of P / M; stratum m starts from component m, so every
start is a reparameterised draw and the component choice needs no score-function gradient.
All strata then run the same sampler in the same coordinates, the ones that whiten the moment-
matched Gaussian of q0 (its mean and covariance): the forward and backward kernels are then one
and the same for every stratum, and only the start differs. The weight of a particle of stratum
m replaces -log q0 by

    -log q0(z0) + log(M pi_m)

and this makes (1/P) sum_p w_p unbiased for Z: with B the (common) backward kernels,
E[w | stratum m] = M pi_m ∫ gamma(z_K) E_B[N_m(z0) / q0(z0) | z_K] dz_K, and
(1/M) sum_m of that is ∫ gamma(z_K) E_B[sum_m pi_m N_m(z0) / q0(z0) | z_K] dz_K = Z.
So log Z-hat is a bound on log Z, and so is the mean of log w (Jensen, stratum by stratum).
With K = 0 this is the stratified mixture bound of Morningstar et al. (2021). With M = 1 it is
the sampler's own Gaussian start, which the neural process uses directly (bit for bit as before).
"""

import distrax
import jax
import jax.numpy as jnp

from amvi_jax.samplers.base import Sampler, SamplerOutput, Start


def components(mean: jax.Array, scale: jax.Array) -> distrax.Distribution:
    """The M Gaussians: mean [M, d], scale [M, d] (diagonal) or [M, d, d] (lower-triangular)."""
    if scale.ndim == mean.ndim:
        return distrax.MultivariateNormalDiag(mean, scale)
    return distrax.MultivariateNormalTri(mean, scale)


def log_prob(z: jax.Array, mean: jax.Array, scale: jax.Array,
             log_weights: jax.Array) -> jax.Array:
    """log q0(z) for z [P, d] -> [P]; mean [M, d], scale [M, d] or [M, d, d], log_weights [M]."""
    return jax.nn.logsumexp(log_weights + components(mean, scale).log_prob(z[:, None, :]),
                            axis=-1)


def moments(mean: jax.Array, scale: jax.Array, log_weights: jax.Array):
    """The mixture's mean [d] and the Cholesky factor [d, d] of its covariance."""
    pi = jnp.exp(log_weights)
    covs = components(mean, scale).covariance()  # [M, d, d]
    centre = jnp.sum(pi[:, None] * mean, axis=0)
    diff = mean - centre
    cov = jnp.einsum("m,mij->ij", pi, covs + diff[:, :, None] * diff[:, None, :])
    return centre, jnp.linalg.cholesky(cov)


def check_particles(num_particles: int, num_components: int) -> None:
    if int(num_particles) % int(num_components):
        raise ValueError(
            f"num_particles={num_particles} is not a multiple of the q0 mixture's "
            f"model.q0_components={num_components}: each component draws P / M particles")


def stratified_draw(key, mean: jax.Array, scale: jax.Array, num_particles: int):
    """P / M draws from each component -> (z0 [P, d], component index [P])."""
    num = mean.shape[0]
    check_particles(num_particles, num)
    index = jnp.repeat(jnp.arange(num), num_particles // num)
    z0 = components(mean[index], scale[index]).sample(seed=key)
    return z0, index


def run(sampler: Sampler, params, key, log_target, mean: jax.Array, scale: jax.Array,
        log_weights: jax.Array, embedding: jax.Array, num_particles: int) -> SamplerOutput:
    """`sampler` from the mixture q0 (mean [M, d], scale, log_weights [M]) -> SamplerOutput.

    log_w [P] follows the module docstring; z0 [P, d] are the stratified starts.
    """
    # the driver draws from fold_in(key, 0..K): K + 1 is a key of its own
    key_start = jax.random.fold_in(key, sampler.num_steps + 1)
    z0, index = stratified_draw(key_start, mean, scale, num_particles)
    log_q = log_prob(z0, mean, scale, log_weights) - (jnp.log(mean.shape[0])
                                                      + log_weights[index])
    centre, chol = moments(mean, scale, log_weights)
    u0 = jax.scipy.linalg.solve_triangular(chol, (z0 - centre).T, lower=True).T
    log_q_u = log_q + jnp.sum(jnp.log(jnp.diagonal(chol)))
    return sampler.run(params, key, log_target, centre, chol, embedding, num_particles,
                       start=Start(u0, log_q_u))
