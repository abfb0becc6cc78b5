"""The sampler contract and the pieces that several kernels share.

A sampler is three pure functions (see `Sampler`):

    init(key, dim_z, dim_embedding) -> params
    run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles) -> SamplerOutput
    schedules(params, embedding) -> Schedules

`log_target` maps one z [d_z] to a scalar unnormalised log density log gamma(z). `run` vmaps
over particles itself; callers vmap `run` over tasks. ELBO = mean(log_w) <= log Z and
log Z-hat = logsumexp(log_w) - log P is unbiased for Z (docs/DESIGN.md section 3).

All diffusions run in q0-whitened coordinates u = S^-1 (z - mean), where q0 is N(0, I) and S is
q0's scale (a vector, or a lower-triangular factor for a correlated q0). The target is
transported with its Jacobian, log gamma_u(u) = log gamma(z(u)) + log |det S|, so that
log gamma_u(u_K) - log q0_u(u_0) equals log gamma(z_K) - log q0(z_0) exactly: the weights do not
depend on the coordinates, while one set of step sizes fits every task.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import chex
import jax
import jax.numpy as jnp
import ml_collections

from amvi_jax import networks
from amvi_jax.types import SamplerOutput, Schedules, Start, check_q0


@dataclasses.dataclass(frozen=True)
class Sampler:
    """A named triple of pure functions plus the (frozen) config they close over."""

    name: str
    config: ml_collections.FrozenConfigDict
    init: Callable[..., Any]
    run: Callable[..., SamplerOutput]
    schedules: Callable[..., Schedules]

    @property
    def num_steps(self) -> int:
        return int(self.config.num_steps)


# ------------------------------------------------------------------------------------------
# Options: each kernel's default config is the union of the groups it uses, so
# `samplers.default_config(name)` lists exactly the options that change that sampler.


def diffusion_options(annealed: bool) -> ml_collections.ConfigDict:
    """Options of every diffusion; `annealed` kernels also follow the path beta_k."""
    options = dict(
        num_steps=8,               # K
        step_size_init=0.1,        # eps_k at initialisation (whitened coordinates)
        step_size_max=1.0,         # eps_k = step_size_max * sigmoid(a_k)
        per_step_step_size=True,   # one learned eps per step, else one shared scalar
        schedule_from_embedding=False,  # schedules shifted by a zero-init linear map of e
        stop_grad_score=False,     # stop-gradient of the target score inside the dynamics
        # jax.checkpoint the step: memory flat in K, and on CPU 2.6x faster training steps
        # (docs/PERFORMANCE.md: without it XLA zero-fills and streams K stacked buffers).
        remat=True,
    )
    if annealed:
        options["learn_schedule"] = True  # learned annealing b; False keeps beta linear
    return ml_collections.ConfigDict(options)


def network_options() -> ml_collections.ConfigDict:
    """Options of kernels with a score / control network."""
    return ml_collections.ConfigDict(dict(
        hidden=(64, 64),
        activation="gelu",
        score_clip=100.0,          # clip of the target score fed to the network
    ))


def momentum_options() -> ml_collections.ConfigDict:
    """Options of underdamped kernels."""
    return ml_collections.ConfigDict(dict(damping_init=0.5, mass_init=1.0))


def merge(*groups: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    merged = ml_collections.ConfigDict()
    for group in groups:
        merged.update(group.to_dict())
    return merged


def validate_options(cfg, name: str) -> None:
    """Reject impossible values of whichever option groups `cfg` holds, naming the field."""
    def bad(field, why):
        raise ValueError(f"sampler {name!r}: {field}={cfg[field]!r} {why}")

    if int(cfg.num_steps) < 1:
        bad("num_steps", "must be >= 1 (use sampler 'gaussian' for K = 0)")
    if not cfg.step_size_max > 0:
        bad("step_size_max", "must be > 0")
    if not 0 < cfg.step_size_init < cfg.step_size_max:
        bad("step_size_init", f"must lie in (0, step_size_max={cfg.step_size_max})")
    if "damping_init" in cfg and not 0 < cfg.damping_init < 1:
        bad("damping_init", "must lie in (0, 1)")
    if "mass_init" in cfg and not cfg.mass_init > 0:
        bad("mass_init", "must be > 0")
    if "score_clip" in cfg and not cfg.score_clip > 0:
        bad("score_clip", "must be > 0")
    if "hidden" in cfg and (len(cfg.hidden) < 1 or min(cfg.hidden) < 1):
        bad("hidden", "must be a non-empty tuple of positive widths")


# ------------------------------------------------------------------------------------------
# Inputs


def check_inputs(q0_mean, q0_scale, embedding, num_particles: int,
                 start: Start | None = None) -> None:
    check_q0(q0_mean, q0_scale)
    chex.assert_rank(embedding, 1)
    if int(num_particles) < 1:
        raise ValueError(f"num_particles={num_particles} must be >= 1")
    if start is not None:
        chex.assert_shape(start.u, (int(num_particles), q0_mean.shape[0]))
        chex.assert_shape(start.log_q, (int(num_particles),))


# ------------------------------------------------------------------------------------------
# Learned schedules


def logit(p: float) -> float:
    return math.log(p) - math.log1p(-p)


def init_schedule(cfg) -> dict:
    """Unconstrained schedule parameters: a [K] or [1] (step sizes) and, for annealed kernels,
    b [K] (annealing increments)."""
    k = int(cfg.num_steps)
    a0 = logit(cfg.step_size_init / cfg.step_size_max)
    # Explicit float32: weak-typed leaves would turn strong after one update and retrace the step.
    params = dict(a=jnp.full((k if cfg.per_step_step_size else 1,), a0, jnp.float32))
    if "learn_schedule" in cfg:
        params["b"] = jnp.zeros((k,), jnp.float32)
    return params


def init_schedule_conditioner(cfg, dim_embedding: int) -> dict:
    """Zero-init linear map e -> shifts of (b, a); empty when not conditioned on e."""
    if not cfg.schedule_from_embedding or dim_embedding == 0:
        return {}
    rows = 2 if "learn_schedule" in cfg else 1
    return dict(w=jnp.zeros((dim_embedding, rows * int(cfg.num_steps)), jnp.float32))


def schedule(cfg, params: dict, embedding: jax.Array) -> tuple[jax.Array | None, jax.Array]:
    """-> beta [K + 1] (None for kernels without annealing; beta_0 = 0, beta_K = 1,
    non-decreasing) and eps [K] in (0, step_size_max)."""
    k = int(cfg.num_steps)
    b = params.get("b")
    a = jnp.broadcast_to(params["a"], (k,))
    if "w" in params.get("cond", {}):
        shifts = embedding @ params["cond"]["w"]
        if b is None:
            a = a + shifts
        else:
            shift_b, shift_a = jnp.split(shifts, 2)
            b, a = b + shift_b, a + shift_a
    beta = None
    if b is not None:
        if not cfg.learn_schedule:
            b = jax.lax.stop_gradient(jnp.zeros_like(b))
        inc = jax.nn.softplus(b)
        cum = jnp.cumsum(inc)
        # Pin beta_K to exactly 1: cum[-1] / sum(inc) can be 1 - ulp in float32.
        beta = jnp.concatenate([jnp.zeros((1,)), cum[:-1] / cum[-1], jnp.ones((1,))])
    eps = cfg.step_size_max * jax.nn.sigmoid(a)
    return beta, eps


# ------------------------------------------------------------------------------------------
# Scores and networks


def anneal_score(u: jax.Array, grad_gamma_u: jax.Array, beta: jax.Array) -> jax.Array:
    """grad log pi_beta(u) with pi ∝ N(u; 0, I)^(1 - beta) gamma_u(u)^beta."""
    return (1.0 - beta) * (-u) + beta * grad_gamma_u


def dynamics_score(grad: jax.Array, cfg) -> jax.Array:
    """The target score as the dynamics use it: pathwise, or stop-gradient if configured."""
    return jax.lax.stop_gradient(grad) if cfg.stop_grad_score else grad


def network_score_input(grad: jax.Array, cfg) -> jax.Array:
    """The target score as a network input: no gradient through it, clipped for stability."""
    return jnp.clip(jax.lax.stop_gradient(grad), -cfg.score_clip, cfg.score_clip)


@dataclasses.dataclass(frozen=True)
class ParticleNetwork:
    """The score / control network of one sampler, applied to a batch of particles."""

    cfg: ml_collections.FrozenConfigDict
    momentum: bool  # underdamped networks also see rho

    def _module(self, dim_z: int) -> networks.ScoreNetwork:
        return networks.ScoreNetwork(dim_z=dim_z, hidden=tuple(self.cfg.hidden),
                                     activation=self.cfg.activation)

    def init(self, key, dim_z: int, dim_embedding: int) -> dict:
        zeros = jnp.zeros((dim_z,))
        rho = zeros if self.momentum else jnp.zeros((0,))
        return self._module(dim_z).init(key, zeros, rho, 0.0, jnp.zeros((dim_embedding,)), zeros)

    def apply(self, params, u, rho, t, embedding, grad) -> jax.Array:
        """u, grad [P, d_z], rho [P, d_z] (or None), t scalar, embedding [d_e] -> [P, d_z]."""
        module = self._module(u.shape[-1])
        if rho is None:
            rho = jnp.zeros((u.shape[0], 0), u.dtype)

        def one(ui, ri, gi):
            return module.apply(params, ui, ri, t, embedding, network_score_input(gi, self.cfg))

        return jax.vmap(one)(u, rho, grad)
