"""Underdamped Langevin samplers: UHA (Geffner & Domke 2021) and LDVI (Geffner & Domke 2023).

Momentum rho with diagonal mass M and damping eta, in whitened coordinates u (see `base`):

    rho_0 ~ N(0, M)
    step k: rho' ~ F_ref = N(eta rho_{k-1}, (1 - eta^2) M), then one leapfrog step on pi_k
            (unit Jacobian) from (u_{k-1}, rho') to (u_k, rho_k).
    UHA   B_ref = N(rho_{k-1}; eta rho', (1 - eta^2) M)
    LDVI  B_ref = N(rho_{k-1}; eta rho' + (1 - eta^2) M r(u_{k-1}, rho', t_k, e), (1 - eta^2) M)

    log w = log gamma(z_K) + log N(rho_K; 0, M) - log q0(z_0) - log N(rho_0; 0, M)
            + sum_k [log B_ref - log F_ref]

The LDVI network starts at zero, so LDVI moves its particles exactly as UHA does; its
log-weights then differ from UHA's only by float32 rounding (XLA fuses the extra term
differently) and are identical in float64, because the LDVI correction is subtracted from the
UHA residual rho_{k-1} - eta rho' rather than folded into the backward mean.
"""

import math

import jax
import jax.numpy as jnp
import ml_collections

from amvi_jax.samplers import base

VARIANTS = ("uha", "ldvi")


def default_config() -> ml_collections.ConfigDict:
    return base.common_config()


def make(cfg, variant: str) -> base.Sampler:
    cfg = base.prepare(cfg, variant, VARIANTS)
    num_steps = int(cfg.num_steps)
    network = base.ParticleNetwork(cfg, momentum=True)

    def init(key, dim_z: int, dim_embedding: int = 0) -> dict:
        params = dict(
            base.init_schedule(cfg),
            cond=base.init_schedule_conditioner(cfg, dim_embedding),
            damping=jnp.asarray(base.logit(cfg.damping_init), jnp.float32),
            mass=jnp.full((dim_z,), math.log(math.expm1(cfg.mass_init)), jnp.float32),
        )
        if variant == "ldvi":
            params["net"] = network.init(key, dim_z, dim_embedding)
        return params

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int):
        """-> SamplerOutput(z [P, d_z], log_w [P], aux {beta, step_size, damping, mass})."""
        base.check_inputs(q0_mean, q0_scale, embedding, num_particles)
        dim_z = q0_mean.shape[0]
        log_gamma_u, to_z = base.whiten(log_target, q0_mean, q0_scale)
        value_and_grad = jax.vmap(jax.value_and_grad(log_gamma_u))
        beta, eps = base.schedule(cfg, params, embedding)
        eta = jax.nn.sigmoid(params["damping"])
        mass = jax.nn.softplus(params["mass"])  # [d_z]
        ref_var = (1.0 - eta**2) * mass

        def ctrl(u, rho, t, g):  # [P, d_z] each -> [P, d_z]
            return network.apply(params["net"], u, rho, t, embedding, g)

        def dyn(g):
            return base.dynamics_score(g, cfg)

        def step(carry, k):
            u, _, g, rho, log_w = carry  # [P, d_z], [P], [P, d_z], [P, d_z], [P]
            b, e, t = beta[k + 1], eps[k], (k + 1) / num_steps
            noise = jax.random.normal(jax.random.fold_in(key, k + 1), u.shape)
            rho_ref = eta * rho + jnp.sqrt(ref_var) * noise
            resid_back = rho - eta * rho_ref  # rho_{k-1} minus the UHA backward mean
            if variant == "ldvi":
                resid_back = resid_back - ref_var * ctrl(u, rho_ref, t, g)
            # log B_ref - log F_ref: both have covariance ref_var, so the normalisers cancel.
            log_w = log_w + 0.5 * jnp.sum(noise**2 - resid_back**2 / ref_var, axis=-1)
            rho_half = rho_ref + 0.5 * e * base.anneal_score(u, dyn(g), b)
            u_new = u + e * rho_half / mass
            lg_new, g_new = value_and_grad(u_new)
            rho_new = rho_half + 0.5 * e * base.anneal_score(u_new, dyn(g_new), b)
            return (u_new, lg_new, g_new, rho_new, log_w), None

        if cfg.remat:
            step = jax.checkpoint(step)
        key_u, key_rho = jax.random.split(jax.random.fold_in(key, 0))
        u0 = jax.random.normal(key_u, (num_particles, dim_z))
        rho0 = jnp.sqrt(mass) * jax.random.normal(key_rho, (num_particles, dim_z))
        lg0, g0 = value_and_grad(u0)
        log_w0 = -base.log_normal_diag(u0, 0.0, 1.0) - base.log_normal_diag(rho0, 0.0, mass)
        (u_k, lg_k, _, rho_k, log_w), _ = jax.lax.scan(
            step, (u0, lg0, g0, rho0, log_w0), jnp.arange(num_steps))
        log_w = log_w + lg_k + base.log_normal_diag(rho_k, 0.0, mass)
        aux = dict(beta=beta, step_size=eps, damping=eta, mass=mass)
        return base.SamplerOutput(jax.vmap(to_z)(u_k), log_w, aux)

    return base.Sampler(variant, cfg, init, run)
