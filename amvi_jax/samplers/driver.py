"""The one K-step driver every diffusion runs on; a kernel supplies only its transition.

`make(kernel, cfg)` turns a `Kernel` into a `Sampler`. The driver does everything kernels share:

1. whitening: the target in u = (z - q0_mean) / q0_scale (`types.whiten`), where q0 is N(0, I);
2. q0 sampling: u_0 ~ N(0, I) from `fold_in(key, 0)` (a kernel with auxiliary variables, e.g.
   momentum, gets the second half of `split(fold_in(key, 0))` to draw them);
3. one batched target evaluation per position, (log gamma_u(u), grad log gamma_u(u)), cached in
   the state so that no kernel evaluates the target twice at the same point;
4. the `jax.lax.scan` over k = 0..K-1 with `fold_in(key, k + 1)` as step k's noise key, under
   `jax.checkpoint` when `cfg.remat` (memory flat in K);
5. the weight: log w = -log q0_u(u_0) - log q_aux + sum_k increment_k + log gamma_u(u_K)
   + final term, and the map back to z;
6. the typed `Schedules` of the run.

A kernel is a module with a typed state (a NamedTuple with at least `u` and `log_gamma`) and
pure functions:

    default_config() -> ConfigDict                 options of this kernel only
    init_params(cfg, key, dim_z, dim_embedding) -> params
    schedules(cfg, params, embedding) -> Schedules  per-run coefficients (tracer-safe)
    init(cfg, ctx, key, particles) -> (state, log_q_aux [P] or None)
    step(cfg, ctx, state, k, key) -> (state, log B_k - log F_k  [P])
    final(cfg, ctx, state) -> [P]                  optional extra terms at u_K (e.g. momentum)

Adding a diffusion = one such module, one line in `samplers/__init__.py` and one config file.
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections

from amvi_jax import types
from amvi_jax.samplers import base


class Particles(NamedTuple):
    """The state of kernels without auxiliary variables: positions and the cached target."""

    u: jax.Array  # [P, d_z] whitened positions
    log_gamma: jax.Array  # [P] log gamma_u(u)
    grad: jax.Array  # [P, d_z] grad log gamma_u(u)


class Context(NamedTuple):
    """What every transition of one run sees besides its state."""

    params: dict  # the sampler's params
    schedules: types.Schedules
    embedding: jax.Array  # [d_e] task embedding
    evaluate: Callable[[jax.Array], tuple[jax.Array, jax.Array]]  # u [P, d] -> ([P], [P, d])
    num_steps: int  # K


def no_auxiliary(cfg, ctx: Context, key, particles: Particles):
    """`init` of kernels whose state is just the particles."""
    del cfg, ctx, key
    return particles, None


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A diffusion's own pieces (see the module docstring); `auxiliary` kernels get a key in
    `init` for variables beyond u_0."""

    name: str
    default_config: Callable[[], ml_collections.ConfigDict]
    init_params: Callable[..., dict]
    schedules: Callable[..., types.Schedules]
    step: Callable[..., tuple[Any, jax.Array]]
    init: Callable[..., tuple[Any, jax.Array | None]] = no_auxiliary
    final: Callable[..., jax.Array] | None = None
    auxiliary: bool = False
    validate: Callable[[Any, str], None] = base.validate_options

    def build(self, cfg) -> base.Sampler:
        return make(self, cfg)


def make(kernel: Kernel, cfg) -> base.Sampler:
    """The sampler of `kernel` with options `cfg` (validated, then frozen)."""
    kernel.validate(cfg, kernel.name)
    cfg = ml_collections.FrozenConfigDict(cfg)
    num_steps = int(cfg.num_steps)

    def init(key, dim_z: int, dim_embedding: int = 0) -> dict:
        return kernel.init_params(cfg, key, dim_z, dim_embedding)

    def schedules(params, embedding) -> types.Schedules:
        return kernel.schedules(cfg, params, embedding)

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int,
            start: types.Start | None = None):
        """-> SamplerOutput(z [P, d_z], log_w [P], schedules, z0 [P, d_z]).

        The particles start from N(q0_mean, S S^T), or from `start` (given in the coordinates
        that this Gaussian whitens) when one is given.
        """
        base.check_inputs(q0_mean, q0_scale, embedding, num_particles, start)
        dim_z = q0_mean.shape[0]
        log_gamma_u, to_z = types.whiten(log_target, q0_mean, q0_scale)
        evaluate = jax.vmap(jax.value_and_grad(log_gamma_u))
        sched = kernel.schedules(cfg, params, embedding)
        ctx = Context(params, sched, embedding, evaluate, num_steps)

        def body(carry, k):
            state, log_w = carry
            state, increment = kernel.step(cfg, ctx, state, k, jax.random.fold_in(key, k + 1))
            return (state, log_w + increment), None

        if cfg.remat:
            body = jax.checkpoint(body)
        key_0 = jax.random.fold_in(key, 0)
        key_u, key_aux = jax.random.split(key_0) if kernel.auxiliary else (key_0, None)
        if start is None:
            u0 = jax.random.normal(key_u, (num_particles, dim_z))
            log_w0 = -types.log_normal_diag(u0, 0.0, 1.0)
        else:
            u0, log_w0 = start.u, -start.log_q
        state, log_q_aux = kernel.init(cfg, ctx, key_aux, Particles(u0, *evaluate(u0)))
        if log_q_aux is not None:
            log_w0 = log_w0 - log_q_aux
        (state, log_w), _ = jax.lax.scan(body, (state, log_w0), jnp.arange(num_steps))
        log_w = log_w + state.log_gamma
        if kernel.final is not None:
            log_w = log_w + kernel.final(cfg, ctx, state)
        to_z = jax.vmap(to_z)
        return types.SamplerOutput(to_z(state.u), log_w, sched, to_z(u0))

    return base.Sampler(kernel.name, cfg, init, run, schedules)
