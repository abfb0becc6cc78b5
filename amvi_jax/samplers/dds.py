"""DDS: the denoising diffusion sampler (Vargas, Grathwohl and Doucet, ICLR 2023), with its
exponential-integrator discretisation.

Reference process in whitened coordinates: the Ornstein-Uhlenbeck process with stationary law
N(0, I) = q0, integrated exactly: R_k(u_{k+1} | u_k) = N(lambda_k u_k, alpha_k) with
lambda_k = sqrt(1 - alpha_k). It is reversible with respect to N(0, I), so the noising kernel
of the target path is B_k(u_k | u_{k+1}) = N(u_k; lambda_k u_{k+1}, alpha_k). Sampling starts at
u_0 ~ q0 and adds a learned drift f to the exact OU step:

    F_k = N(u_{k+1}; lambda_k u_k + 2 (1 - lambda_k) f(u_k, t_k, e), alpha_k)
    f(u, t_k, e) = NN(u, t_k, e, score) + c_k * (grad log gamma_u(u) + u)

    log w = log gamma_u(u_K) - log N(u_0; 0, I) + sum_k [log B_k - log F_k]

with t_k = k / K and learned noise fractions alpha_k in (0, 1) (`step_size`). Since
N(u_{k+1}) B_k(u_k | u_{k+1}) = N(u_k) R_k(u_{k+1} | u_k), the increment is computed as
log R_k - log F_k (equal covariances: a Girsanov term in the noise) plus
log N(u_k) - log N(u_{k+1}), which telescopes. With f = 0 the chain is the exact OU, u_K ~ q0,
and log w = log gamma(z_K) - log q0(z_K): DDS starts as the Gaussian it is warm-started from.
The drift follows the paper's NN1(u, t) + NN2(t) * score network, with the score taken relative
to the reference (grad log gamma_u + u = grad log(gamma_u / q0_u), the optimal drift at the last
step for a Gaussian target when c = 1); NN and the per-step, per-dimension c start at zero.
"""

import jax
import jax.numpy as jnp

from amvi_jax import types
from amvi_jax.samplers import base, driver

State = driver.Particles


def default_config():
    return base.merge(base.diffusion_options(annealed=False), base.network_options())


def _network(cfg) -> base.ParticleNetwork:
    return base.ParticleNetwork(cfg, momentum=False)


def init_params(cfg, key, dim_z, dim_embedding):
    return dict(base.init_schedule(cfg), cond=base.init_schedule_conditioner(cfg, dim_embedding),
                net=_network(cfg).init(key, dim_z, dim_embedding),
                guidance=jnp.zeros((int(cfg.num_steps), dim_z), jnp.float32))


def schedules(cfg, params, embedding):
    _, alpha = base.schedule(cfg, params, embedding)
    return types.Schedules(step_size=alpha)


def step(cfg, ctx: driver.Context, state: State, k, key):
    """Exponential-integrator step u_k -> u_{k+1}; increment log B_k - log F_k [P]."""
    u, g = state.u, state.grad  # [P, d_z]
    alpha, t = ctx.schedules.step_size[k], k / ctx.num_steps
    lam = jnp.sqrt(1.0 - alpha)
    drift = (_network(cfg).apply(ctx.params["net"], u, None, t, ctx.embedding, g)
             + ctx.params["guidance"][k] * (base.dynamics_score(g, cfg) + u))
    shift = 2.0 * (1.0 - lam) * drift  # mean of F_k minus mean of R_k
    noise = jax.random.normal(key, u.shape)
    u_new = lam * u + shift + jnp.sqrt(alpha) * noise
    lg_new, g_new = ctx.evaluate(u_new)
    # log R_k - log F_k with u_new - mean_R = shift + sqrt(alpha) noise.
    girsanov = 0.5 * jnp.sum(noise**2 - (shift / jnp.sqrt(alpha) + noise) ** 2, axis=-1)
    telescoping = 0.5 * jnp.sum(u_new**2 - u**2, axis=-1)  # log N(u_k) - log N(u_{k+1})
    return State(u_new, lg_new, g_new), girsanov + telescoping


DDS = driver.Kernel(name="dds", default_config=default_config, init_params=init_params,
                    schedules=schedules, step=step)
