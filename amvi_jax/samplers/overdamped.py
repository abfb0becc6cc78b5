"""Overdamped Langevin samplers: ULA, MCD (Doucet et al. 2022) and CMCD (Vargas et al. 2024).

With s_k = grad log pi_k, in whitened coordinates u (see `base`):

    ULA   F_k = N(u_k; u_{k-1} + eps_k s_k(u_{k-1}), 2 eps_k)
          B_k = N(u_{k-1}; u_k + eps_k s_k(u_k), 2 eps_k)
    MCD   F_k as ULA;  B_k mean u_k + eps_k [s_k(u_k) + 2 r(u_k, t_k, e)]
    CMCD  F_k mean u_{k-1} + eps_k [s_k(u_{k-1}) + c(u_{k-1}, t_{k-1}, e)]
          B_k mean u_k + eps_k [s_k(u_k) - c(u_k, t_k, e)]

    log w = log gamma(z_K) - log q0(z_0) + sum_k [log B_k - log F_k]

The networks start at exactly zero, so MCD and CMCD reproduce ULA bit for bit at init. One
target-gradient evaluation per step: the score at u_k is carried into step k + 1.
"""

import jax
import jax.numpy as jnp
import ml_collections

from amvi_jax.samplers import base

VARIANTS = ("ula", "mcd", "cmcd")


def default_config() -> ml_collections.ConfigDict:
    return base.common_config()


def make(cfg, variant: str) -> base.Sampler:
    cfg = base.prepare(cfg, variant, VARIANTS)
    num_steps = int(cfg.num_steps)
    network = base.ParticleNetwork(cfg, momentum=False)

    def init(key, dim_z: int, dim_embedding: int = 0) -> dict:
        params = dict(base.init_schedule(cfg),
                      cond=base.init_schedule_conditioner(cfg, dim_embedding))
        if variant != "ula":
            params["net"] = network.init(key, dim_z, dim_embedding)
        return params

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int):
        """-> SamplerOutput(z [P, d_z], log_w [P], aux {beta [K+1], step_size [K]})."""
        base.check_inputs(q0_mean, q0_scale, embedding, num_particles)
        dim_z = q0_mean.shape[0]
        log_gamma_u, to_z = base.whiten(log_target, q0_mean, q0_scale)
        value_and_grad = jax.vmap(jax.value_and_grad(log_gamma_u))
        beta, eps = base.schedule(cfg, params, embedding)

        def ctrl(u, t, g):  # [P, d_z] -> [P, d_z]
            return network.apply(params["net"], u, None, t, embedding, g)

        def dyn(g):
            return base.dynamics_score(g, cfg)

        def step(carry, k):
            u, _, g, log_w = carry  # [P, d_z], [P], [P, d_z], [P]
            b, e = beta[k + 1], eps[k]
            t_prev, t_next = k / num_steps, (k + 1) / num_steps
            drift = base.anneal_score(u, dyn(g), b)
            if variant == "cmcd":
                drift = drift + ctrl(u, t_prev, g)
            mean_f = u + e * drift
            noise = jax.random.normal(jax.random.fold_in(key, k + 1), u.shape)
            u_new = mean_f + jnp.sqrt(2.0 * e) * noise
            lg_new, g_new = value_and_grad(u_new)
            drift_b = base.anneal_score(u_new, dyn(g_new), b)
            if variant == "mcd":
                drift_b = drift_b + 2.0 * ctrl(u_new, t_next, g_new)
            elif variant == "cmcd":
                drift_b = drift_b - ctrl(u_new, t_next, g_new)
            mean_b = u_new + e * drift_b
            log_w = (log_w + base.log_normal_diag(u, mean_b, 2.0 * e)
                     - base.log_normal_diag(u_new, mean_f, 2.0 * e))
            return (u_new, lg_new, g_new, log_w), None

        if cfg.remat:
            step = jax.checkpoint(step)
        u0 = jax.random.normal(jax.random.fold_in(key, 0), (num_particles, dim_z))
        lg0, g0 = value_and_grad(u0)
        log_w0 = -base.log_normal_diag(u0, 0.0, 1.0)
        (u_k, lg_k, _, log_w), _ = jax.lax.scan(
            step, (u0, lg0, g0, log_w0), jnp.arange(num_steps))
        log_w = log_w + lg_k
        return base.SamplerOutput(jax.vmap(to_z)(u_k), log_w, dict(beta=beta, step_size=eps))

    return base.Sampler(variant, cfg, init, run)
