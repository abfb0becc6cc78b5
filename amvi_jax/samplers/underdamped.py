"""Underdamped Langevin kernels: UHA (Geffner & Domke 2021) and LDVI (Geffner & Domke 2023).

Momentum rho with diagonal mass M and damping eta, in whitened coordinates u:

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
from typing import NamedTuple

import jax
import jax.numpy as jnp

from amvi_jax import types
from amvi_jax.samplers import base, driver


class State(NamedTuple):
    u: jax.Array  # [P, d_z] whitened positions
    log_gamma: jax.Array  # [P] log gamma_u(u)
    grad: jax.Array  # [P, d_z] grad log gamma_u(u)
    rho: jax.Array  # [P, d_z] momentum


def _kernel(name: str, learned: bool) -> driver.Kernel:
    """learned: LDVI's backward momentum network; UHA without it."""

    def default_config():
        groups = [base.diffusion_options(annealed=True), base.momentum_options()]
        return base.merge(*groups, *([base.network_options()] if learned else []))

    def network(cfg) -> base.ParticleNetwork:
        return base.ParticleNetwork(cfg, momentum=True)

    def init_params(cfg, key, dim_z, dim_embedding):
        params = dict(
            base.init_schedule(cfg),
            cond=base.init_schedule_conditioner(cfg, dim_embedding),
            damping=jnp.asarray(base.logit(cfg.damping_init), jnp.float32),
            mass=jnp.full((dim_z,), math.log(math.expm1(cfg.mass_init)), jnp.float32),
        )
        if learned:
            params["net"] = network(cfg).init(key, dim_z, dim_embedding)
        return params

    def schedules(cfg, params, embedding):
        beta, eps = base.schedule(cfg, params, embedding)
        return types.Schedules(beta=beta, step_size=eps, damping=jax.nn.sigmoid(params["damping"]),
                              mass=jax.nn.softplus(params["mass"]))

    def init(cfg, ctx: driver.Context, key, particles: driver.Particles):
        """rho_0 ~ N(0, M) -> (State, log N(rho_0; 0, M) [P])."""
        del cfg
        mass = ctx.schedules.mass
        rho0 = jnp.sqrt(mass) * jax.random.normal(key, particles.u.shape)
        return State(*particles, rho0), types.log_normal_diag(rho0, 0.0, mass)

    def step(cfg, ctx: driver.Context, state: State, k, key):
        """Momentum refresh, one leapfrog step; increment log B_ref - log F_ref [P]."""
        s = ctx.schedules
        u, g, rho = state.u, state.grad, state.rho
        b, e, t = s.beta[k + 1], s.step_size[k], (k + 1) / ctx.num_steps
        eta, mass = s.damping, s.mass
        ref_var = (1.0 - eta**2) * mass
        noise = jax.random.normal(key, u.shape)
        rho_ref = eta * rho + jnp.sqrt(ref_var) * noise
        resid_back = rho - eta * rho_ref  # rho_{k-1} minus the UHA backward mean
        if learned:
            resid_back = resid_back - ref_var * network(cfg).apply(
                ctx.params["net"], u, rho_ref, t, ctx.embedding, g)
        # log B_ref - log F_ref: both have covariance ref_var, so the normalisers cancel.
        increment = 0.5 * jnp.sum(noise**2 - resid_back**2 / ref_var, axis=-1)
        rho_half = rho_ref + 0.5 * e * base.anneal_score(u, base.dynamics_score(g, cfg), b)
        u_new = u + e * rho_half / mass
        lg_new, g_new = ctx.evaluate(u_new)
        rho_new = rho_half + 0.5 * e * base.anneal_score(u_new, base.dynamics_score(g_new, cfg), b)
        return State(u_new, lg_new, g_new, rho_new), increment

    def final(cfg, ctx: driver.Context, state: State):
        """log N(rho_K; 0, M) [P]: the momentum's target marginal."""
        del cfg
        return types.log_normal_diag(state.rho, 0.0, ctx.schedules.mass)

    return driver.Kernel(name=name, default_config=default_config, init_params=init_params,
                         schedules=schedules, step=step, init=init, final=final, auxiliary=True)


UHA = _kernel("uha", learned=False)
LDVI = _kernel("ldvi", learned=True)
