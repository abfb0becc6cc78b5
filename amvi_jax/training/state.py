"""The train state every method carries, and the guard against non-finite updates."""

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: dict
    opt_state: optax.OptState
    bad_step: jax.Array  # int32 []: first step with a non-finite loss or update, else -1
    extra: Any = ()  # method-specific state carried through the steps (GMM-NP: its mixtures)


def create(params, opt_state, extra=()) -> TrainState:
    """Step 0 of a run."""
    return TrainState(jnp.zeros((), jnp.int32), params, opt_state, jnp.full((), -1, jnp.int32),
                      extra)


def guarded_update(state: TrainState, ok: jax.Array, params, opt_state, extra=None) -> TrainState:
    """The next state if `ok` (all finite) and no earlier step failed, else the old one.

    A failed step leaves params, optimizer state and `extra` untouched and records its index in
    `bad_step`; the host checks it before logging or saving, so a diverged run keeps its last
    good checkpoint. `extra=None` keeps `state.extra`.
    """
    ok = healthy(state, ok)
    keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
    return TrainState(
        step=state.step + 1,
        params=keep(params, state.params),
        opt_state=keep(opt_state, state.opt_state),
        bad_step=jnp.where(ok | (state.bad_step >= 0), state.bad_step, state.step),
        extra=state.extra if extra is None else keep(extra, state.extra),
    )


def healthy(state: TrainState, ok: jax.Array) -> jax.Array:
    """[] bool: this step is `ok` and no earlier one failed, i.e. the step may change the state.

    For a method that writes part of its `extra` itself (GMM-NP's B updated rows) rather than
    having `guarded_update` select over all of it.
    """
    return ok & (state.bad_step < 0)


def all_finite(tree) -> jax.Array:
    """[] bool: every leaf of `tree` is finite."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def fused(step_fn):
    """Jitted (state, *args, num_steps=n) -> (state, metrics [n, ...]): `step_fn(state, *args)
    -> (state, metrics)` n times in one `lax.scan`, the state donated.

    On a CPU a small model's step costs a few milliseconds, a good part of it in dispatching
    the call; n steps per call pay that once. Each step draws its keys from `state.step`, so
    n fused steps are the same steps as n separate calls. `num_steps` is static: each new n
    compiles once.
    """
    @functools.partial(jax.jit, static_argnames="num_steps", donate_argnums=0)
    def run(state, *args, num_steps: int):
        return jax.lax.scan(lambda s, _: step_fn(s, *args), state, None, length=num_steps)

    return run


def in_segments(run, state, first: int, num_steps: int, segment_end):
    """`run(state, start, n) -> (state, metrics [n])` over the steps first .. first +
    num_steps - 1, cut where the method's step changes: `segment_end(start)` is the first step
    after `start` that needs another step function (a warm start's end, GMM-NP's next epoch).
    Metrics are concatenated along the step axis."""
    pieces = []
    while num_steps > 0:
        n = min(num_steps, segment_end(first) - first)
        state, metrics = run(state, first, n)
        pieces.append(metrics)
        first, num_steps = first + n, num_steps - n
    return state, jax.tree.map(lambda *a: jnp.concatenate(a), *pieces)
