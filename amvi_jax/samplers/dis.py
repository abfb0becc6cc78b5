"""DIS: the time-reversed diffusion sampler (Berner, Richter and Ullrich, "An optimal control
perspective on diffusion-based generative modeling", TMLR 2024), Euler-Maruyama discretised.

Reference (noising) process in whitened coordinates: the Ornstein-Uhlenbeck process
dX = -X dt + sqrt(2) dW, whose stationary law N(0, I) is q0. Sampling runs its time reversal
from u_0 ~ q0 with a learned control c ≈ grad log p_t (the score of the noised target):

    F_k = N(u_{k+1}; u_k + eps_k [u_k + 2 c(u_k, t_k, e)], 2 eps_k)       (generative step)
    B_k = N(u_k; u_{k+1} - eps_k u_{k+1}, 2 eps_k)                        (noising step)
    c(u, t_k, e) = (1 - beta_k) (-u) + beta_k grad log gamma_u(u) + NN(u, t_k, e, score)

    log w = log gamma_u(u_K) - log N(u_0; 0, I) + sum_k [log B_k - log F_k]

with t_k = k / K and learned step sizes eps_k. The weights are exact importance weights for any
control (both kernels are normalised Gaussians), so ELBO <= log Z holds for every network.
Berner et al. parameterise the control as NN1(u, t) + NN2(t) grad log rho(u) ("Langevin
preconditioning"); here the score term follows a learned annealing path beta (linear at init,
beta_0 = 0, beta_K = 1): at t = 0 the control is the score of q0 = N(0, I), where the noised
target is q0, and it moves towards the target's score as t -> 1, where the noised target is the
target (the last step uses beta_{K-1}: an explicit step evaluates the control before it moves). The
network NN starts at zero and sees time, task embedding and the clipped, stop-gradient score.
"""

import jax
import jax.numpy as jnp

from amvi_jax import types
from amvi_jax.samplers import base, driver

State = driver.Particles


def default_config():
    return base.merge(base.diffusion_options(annealed=True), base.network_options())


def _network(cfg) -> base.ParticleNetwork:
    return base.ParticleNetwork(cfg, momentum=False)


def init_params(cfg, key, dim_z, dim_embedding):
    return dict(base.init_schedule(cfg), cond=base.init_schedule_conditioner(cfg, dim_embedding),
                net=_network(cfg).init(key, dim_z, dim_embedding))


def schedules(cfg, params, embedding):
    beta, eps = base.schedule(cfg, params, embedding)
    return types.Schedules(beta=beta, step_size=eps)


def step(cfg, ctx: driver.Context, state: State, k, key):
    """Generative Euler step u_k -> u_{k+1}; increment log B_k - log F_k [P]."""
    u, g = state.u, state.grad  # [P, d_z]
    b, e, t = ctx.schedules.beta[k], ctx.schedules.step_size[k], k / ctx.num_steps
    control = (base.anneal_score(u, base.dynamics_score(g, cfg), b)
               + _network(cfg).apply(ctx.params["net"], u, None, t, ctx.embedding, g))
    mean_f = u + e * (u + 2.0 * control)
    u_new = mean_f + jnp.sqrt(2.0 * e) * jax.random.normal(key, u.shape)
    lg_new, g_new = ctx.evaluate(u_new)
    mean_b = u_new - e * u_new
    increment = (types.log_normal_diag(u, mean_b, 2.0 * e)
                 - types.log_normal_diag(u_new, mean_f, 2.0 * e))
    return State(u_new, lg_new, g_new), increment


DIS = driver.Kernel(name="dis", default_config=default_config, init_params=init_params,
                    schedules=schedules, step=step)
