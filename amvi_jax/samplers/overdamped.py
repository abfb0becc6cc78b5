"""Overdamped Langevin kernels: ULA, MCD (Doucet et al. 2022) and CMCD (Vargas et al. 2024).

With s_k = grad log pi_k (the annealing path, `base.anneal_score`), in whitened coordinates u:

    ULA   F_k = N(u_k; u_{k-1} + eps_k s_k(u_{k-1}), 2 eps_k)
          B_k = N(u_{k-1}; u_k + eps_k s_k(u_k), 2 eps_k)
    MCD   F_k as ULA;  B_k mean u_k + eps_k [s_k(u_k) + 2 r(u_k, t_k, e)]
    CMCD  F_k mean u_{k-1} + eps_k [s_k(u_{k-1}) + c(u_{k-1}, t_{k-1}, e)]
          B_k mean u_k + eps_k [s_k(u_k) - c(u_k, t_k, e)]

The step's log-weight increment is log B_k - log F_k. The networks start at exactly zero, so MCD
and CMCD reproduce ULA bit for bit at init. One target evaluation per step: the score at u_k
is carried into step k + 1.
"""

import jax
import jax.numpy as jnp

from amvi_jax import types
from amvi_jax.samplers import base, driver

State = driver.Particles  # u, log gamma_u(u), grad: nothing beyond the positions


def _kernel(name: str, learned: str | None) -> driver.Kernel:
    """learned: None (ULA), "backward" (MCD: a score in B only), "both" (CMCD: a control in
    F and, with the opposite sign, in B)."""

    def default_config():
        groups = [base.diffusion_options(annealed=True)]
        return base.merge(*groups, base.network_options()) if learned else groups[0]

    def network(cfg) -> base.ParticleNetwork:
        return base.ParticleNetwork(cfg, momentum=False)

    def init_params(cfg, key, dim_z, dim_embedding):
        params = dict(base.init_schedule(cfg),
                      cond=base.init_schedule_conditioner(cfg, dim_embedding))
        if learned:
            params["net"] = network(cfg).init(key, dim_z, dim_embedding)
        return params

    def schedules(cfg, params, embedding):
        beta, eps = base.schedule(cfg, params, embedding)
        return types.Schedules(beta=beta, step_size=eps)

    def step(cfg, ctx: driver.Context, state: State, k, key):
        """One forward move u_{k-1} -> u_k and its increment log B_k - log F_k [P]."""
        u, g = state.u, state.grad  # [P, d_z]
        b, e = ctx.schedules.beta[k + 1], ctx.schedules.step_size[k]
        t_prev, t_next = k / ctx.num_steps, (k + 1) / ctx.num_steps

        def net(u_, t, g_):
            return network(cfg).apply(ctx.params["net"], u_, None, t, ctx.embedding, g_)

        drift = base.anneal_score(u, base.dynamics_score(g, cfg), b)
        if learned == "both":
            drift = drift + net(u, t_prev, g)
        mean_f = u + e * drift
        u_new = mean_f + jnp.sqrt(2.0 * e) * jax.random.normal(key, u.shape)
        lg_new, g_new = ctx.evaluate(u_new)
        drift_b = base.anneal_score(u_new, base.dynamics_score(g_new, cfg), b)
        if learned == "backward":
            drift_b = drift_b + 2.0 * net(u_new, t_next, g_new)
        elif learned == "both":
            drift_b = drift_b - net(u_new, t_next, g_new)
        mean_b = u_new + e * drift_b
        increment = (types.log_normal_diag(u, mean_b, 2.0 * e)
                     - types.log_normal_diag(u_new, mean_f, 2.0 * e))
        return State(u_new, lg_new, g_new), increment

    return driver.Kernel(name=name, default_config=default_config, init_params=init_params,
                         schedules=schedules, step=step)


ULA = _kernel("ula", None)
MCD = _kernel("mcd", "backward")
CMCD = _kernel("cmcd", "both")
