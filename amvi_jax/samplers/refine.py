"""Test-time refinement of any sampler: its weighted particles resampled, then moved.

    refined(sampler, num_moves=16).run(...)  =  sampler.run(...), then
        z ~ resample(z, w),  M Metropolis-corrected moves at the task posterior

The trained sampler does the transport from q0 and sets the weights (so log Z-hat is its own,
unchanged); `reference.resample_move` then replaces the P weighted particles, of which only
about ESS carry weight, by P equally weighted ones spread over the posterior. The evaluation's
second test-time dial (`eval.refine_moves`), beside AIS from q0 (`eval.refine_temperatures`):
it keeps the learned diffusion and pays for M moves instead of T annealing temperatures.
Nothing is learned and the accept / reject step has no pathwise gradient: evaluation only.
"""

import jax

from amvi_jax import reference, samplers, types
from amvi_jax.samplers import base


def dialled(sampler: base.Sampler, temperatures: int = 0, moves: int = 0,
            transition: str = "mala", pilots: int = 256) -> base.Sampler:
    """The sampler one setting of the test-time dials evaluates with: Metropolis-corrected AIS
    from q0 over `temperatures` in place of `sampler` (T > 0; `pilots` tune its kernels), then
    `moves` resample-move steps (M > 0); `sampler` itself at T = M = 0."""
    if temperatures:
        sampler = samplers.get("ais", num_steps=temperatures, transition=transition,
                               num_pilot_particles=pilots)
    return refined(sampler, moves, transition) if moves else sampler


def refined(sampler: base.Sampler, num_moves: int, transition: str = "mala") -> base.Sampler:
    """`sampler` followed by a resample and `num_moves` moves (transition "mala" | "hmc")."""
    if int(num_moves) < 1:
        raise ValueError(f"refined sampler: num_moves={num_moves} must be >= 1")
    config = reference.DEFAULT_MOVE_CONFIG._replace(transition=transition)
    reference.validate(config)  # names an unknown transition and lists the valid ones

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int,
            start: types.Start | None = None) -> types.SamplerOutput:
        """-> SamplerOutput(z [P, d_z] after the moves, log_w [P] all log Z-hat of `sampler`,
        `sampler`'s schedules)."""
        key_run, key_move = jax.random.split(key)
        out = sampler.run(params, key_run, log_target, q0_mean, q0_scale, embedding,
                          num_particles, start)
        z, log_w, _ = reference.resample_move(key_move, log_target, out.z, out.log_w,
                                              int(num_moves), config)
        return types.SamplerOutput(z, log_w, out.schedules)

    return base.Sampler(f"{sampler.name}+{int(num_moves)}moves", sampler.config, sampler.init,
                        run, sampler.schedules)
