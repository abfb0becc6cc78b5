"""Where one amortized training step's time goes, against the floor of its algorithm, and
what fusing several steps into one call buys.

    python -m experiments.measure.cost [--repeats=7] [--fused_steps=50]

The floor of a training step with K diffusion steps: K + 1 evaluations of the task posterior
log gamma(z) together with its gradient in z (the dynamics) and in the decoder's parameters
(the objective), on all B x S x P particles of the batch, i.e. K + 1 calls of
`value_and_grad(sum log gamma, (theta, z))`. The dynamics cannot avoid any of them; what the
step adds on top is the encoder, the drift network, the integrator, the backward pass through
the dynamics (its second-order terms included) and the optimiser.

The parts are timed as separate jitted calls on one fixed batch of the config's shape, all
variants interleaved (`timing.interleaved_seconds`), so the ratios of one run are comparable
on a shared machine; the absolute times are not. The floor's unit is the same call for every
variant (same decoder, same particles): the median over the variants' timings of it is used.
"""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from amvi_jax import data, methods, neural_process, workdir
from amvi_jax.methods import amortized_step as step_lib
from amvi_jax.training import objectives
from amvi_jax.training import state as state_lib
from configs import default
from experiments.measure import suite, timing


@dataclasses.dataclass(frozen=True)
class Variant:
    label: str
    sampler: str  # "gaussian" or a diffusion
    num_steps: int = 0  # K
    stop_grad_score: bool = False


VARIANTS = (Variant("np (K = 0)", "gaussian"),
            Variant("DDS K = 8, second order", "dds", 8),
            Variant("DDS K = 8, stop_grad_score", "dds", 8, True),
            Variant("LDVI K = 8, second order", "ldvi", 8),
            Variant("LDVI K = 8, stop_grad_score", "ldvi", 8, True),
            Variant("LDVI K = 16, second order", "ldvi", 16),
            Variant("LDVI K = 16, stop_grad_score", "ldvi", 16, True))


def variant_config(v: Variant, data_dir: str = ""):
    config = default.get_config()
    if v.sampler != "gaussian":
        config = default.with_diffusion(config, v.sampler, v.num_steps)
        config.sampler.stop_grad_score = v.stop_grad_score
    config.data.data_dir = data_dir
    return config


def step_parts(v: Variant, dataset: data.MetaDataset, data_dir: str = "") -> dict:
    """No-argument calls of the step and of each of its parts, for `v` on one fixed batch."""
    config = variant_config(v, data_dir)
    tc = config.train
    dim_x, dim_y = dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]
    model = neural_process.from_config(config, dim_y)
    optimizer = step_lib.make_optimizer(config)
    params = jax.jit(lambda k: model.init(k, dim_x, dim_y))(jax.random.PRNGKey(0))
    state = state_lib.create(params, optimizer.init(params))
    x, y = jnp.asarray(dataset.meta_train.x), jnp.asarray(dataset.meta_train.y)
    key = jax.random.PRNGKey(1)
    batch = jax.jit(lambda k: data.sample_train_batch(
        k, x, y, tc.batch_size, tc.num_subsets, tc.min_context_size))(key)
    objective = objectives.REGISTRY[tc.objective].bound
    num_particles = tc.num_particles
    num_tasks, num_subsets = batch.mask.shape[:2]
    z = jax.random.normal(key, (num_tasks, num_subsets, num_particles, model.dim_z))

    def per_subset(fn, *args):  # fn(x, y, mask, *args) on every (task, subset)
        return objectives.over_batch(fn, 1 + len(args))(batch.x, batch.y, batch.mask, *args)

    def encoder(p):
        return per_subset(lambda xs, ys, m: model.encode(p, xs, ys, m))

    def scores(p, zz):  # the dynamics' score: value and gradient in z of every particle
        def one(xs, ys, m, zs):
            return jax.vmap(jax.value_and_grad(model.log_target(p, xs, ys, m)))(zs)
        return per_subset(one, zz)

    def floor_unit(p, zz):  # value and gradient in (theta, z), summed over the particles
        def total(p, zz):
            def one(xs, ys, m, zs):
                return jnp.sum(jax.vmap(model.log_target(p, xs, ys, m))(zs))
            return jnp.sum(per_subset(one, zz))
        return jax.value_and_grad(total, argnums=(0, 1))(p, zz)

    def forward(p):
        return objectives.batch_bounds(model, p, key, batch, num_particles, objective)

    def optimise(g, opt_state, p):
        updates, opt_state = optimizer.update(g, opt_state, p)
        return jax.tree.map(jnp.add, p, updates), opt_state

    train_step = step_lib.make_train_step(model, optimizer, config)
    calls = dict(
        # the step donates its state: a copy, so that `params` stays alive for the parts
        step=timing.Carry(lambda s: train_step(s, key, x, y), jax.tree.map(jnp.copy, state)),
        forward=functools.partial(jax.jit(forward), params),
        encoder=functools.partial(jax.jit(encoder), params),
        score=functools.partial(jax.jit(scores), params, z),
        floor_unit=functools.partial(jax.jit(floor_unit), params, z),
        optimiser=functools.partial(jax.jit(optimise), params, state.opt_state, params),
    )
    return calls


def fused_calls(v: Variant, dataset: data.MetaDataset, num_steps: int,
                data_dir: str = "") -> dict:
    """`num_steps` training steps of the method's own step, one call each and fused."""
    config = variant_config(v, data_dir)
    first = config.train.pretrain_steps  # a diffusion's own step, not its warm start's
    one, fused = (methods.REGISTRY[config.method].setup(config, dataset) for _ in range(2))

    def singles(state):
        for i in range(num_steps):
            state, metrics = one.step(state, first + i)
        return state, metrics

    return dict(single=timing.Carry(singles, one.state),
                fused=timing.Carry(lambda s: fused.steps(s, first, num_steps), fused.state))


def measure(dataset: data.MetaDataset, repeats: int, num_fused: int,
            variants=VARIANTS, data_dir: str = "") -> list[dict]:
    """One row per variant: milliseconds of the step and its parts, the floor, and the steps
    per second with one step per call and with `num_fused` per call."""
    calls = {}
    for i, v in enumerate(variants):
        for part, fn in step_parts(v, dataset, data_dir).items():
            calls[(i, part)] = fn
        for part, fn in fused_calls(v, dataset, num_fused, data_dir).items():
            calls[(i, part)] = fn
    seconds = timing.interleaved_seconds(calls, repeats)
    # Every variant times the same likelihood-and-gradient call on the same shapes: their
    # median is one estimate of the floor's unit, steadier on a shared machine than any one.
    unit_ms = 1e3 * float(np.median([s for (_, part), s in seconds.items()
                                     if part == "floor_unit"]))
    rows = []
    for i, v in enumerate(variants):
        ms = {part: 1e3 * s for (j, part), s in seconds.items() if j == i}
        k = v.num_steps
        floor = (k + 1) * unit_ms
        # Forward = encoder + K scores + the final log gamma + network and integrator + bound.
        rest = ms["forward"] - ms["encoder"] - (k + 1) * ms["score"]
        rows.append(dict(
            variant=v.label, step_ms=ms["step"], forward_ms=ms["forward"],
            encoder_ms=ms["encoder"], scores_ms=(k + 1) * ms["score"],
            network_integrator_bound_ms=rest,
            backward_ms=ms["step"] - ms["forward"] - ms["optimiser"],
            optimiser_ms=ms["optimiser"], floor_ms=floor, step_over_floor=ms["step"] / floor,
            steps_per_s_single=num_fused / (ms["single"] / 1e3),
            steps_per_s_fused=num_fused / (ms["fused"] / 1e3)))
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a markdown table: milliseconds, and the step as a multiple of its floor."""
    head = ("| variant | step (ms) | forward | encoder | K + 1 scores | network, integrator, "
            "bound | backward | optimiser | floor | step / floor | steps/s, 1 per call | "
            "steps/s, fused | fused / 1 |\n|" + "---|" * 13)
    lines = [head]
    for r in rows:
        lines.append(
            f"| {r['variant']} | {r['step_ms']:.2f} | {r['forward_ms']:.2f} | "
            f"{r['encoder_ms']:.3f} | {r['scores_ms']:.2f} | "
            f"{r['network_integrator_bound_ms']:.2f} | {r['backward_ms']:.2f} | "
            f"{r['optimiser_ms']:.3f} | {r['floor_ms']:.2f} | {r['step_over_floor']:.2f} | "
            f"{r['steps_per_s_single']:.0f} | {r['steps_per_s_fused']:.0f} | "
            f"{r['steps_per_s_fused'] / r['steps_per_s_single']:.2f} |")
    return "\n".join(lines)


def main(argv):
    del argv
    dataset = workdir.load_data(variant_config(VARIANTS[0]))
    machine = suite.machine()
    repeats, fused = flags.FLAGS.repeats, flags.FLAGS.fused_steps
    rows = measure(dataset, repeats, fused)
    text = (f"{table(rows)}\n\nmachine: {machine}; load at the end: {suite.loadavg()}; "
            f"{repeats} rounds, {fused} steps per fused call\n")
    print(text)
    if flags.FLAGS.output:
        with open(flags.FLAGS.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    # Defined here, not at import: tests import this module beside others with an --output.
    flags.DEFINE_integer("repeats", 7, "Timed rounds per variant (median).")
    flags.DEFINE_integer("fused_steps", 50, "Steps per call of the fused rows.")
    flags.DEFINE_string("output", "", "Also write the table (markdown) to this file.")
    app.run(main)
