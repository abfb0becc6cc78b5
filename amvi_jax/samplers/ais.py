"""Test-time sampler: Metropolis-corrected AIS from q0 to the task posterior (`amvi_jax.reference`).

    z_0 ~ q0,  K temperatures of pi_k ∝ q0^(1 - beta_k) gamma^beta_k,  one MALA or HMC move each

Nothing is learned (`init` returns no parameters): the accept / reject step has no pathwise
gradient, so this sampler is for evaluation only, the test-time compute dial
(`eval.refine_temperatures`): the trained model with this sampler in place of its own, started
at the amortized q0 (its full factor if q0 is correlated). Its weights are exact for any K
(E[exp(log_w)] = Z), its ELBO rises towards log Z with K, and its cost is linear in K.
"""

import ml_collections

from amvi_jax import reference, types
from amvi_jax.samplers import base


def default_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        num_steps=64,                 # K temperatures (one increment and one MH move each)
        transition="mala",            # "mala" | "hmc" (reference.TRANSITIONS)
        num_pilot_particles=256,      # unweighted population that tunes step and mass
    ))


def ais_config(cfg, num_particles: int) -> reference.AISConfig:
    """The reference module's settings for this sampler's options and P particles."""
    return reference.AISConfig(num_temperatures=int(cfg.num_steps),
                               num_particles=int(num_particles), transition=cfg.transition,
                               num_pilot_particles=int(cfg.num_pilot_particles))


def build(cfg) -> base.Sampler:
    if int(cfg.num_steps) < 1:
        raise ValueError(f"sampler 'ais': num_steps={cfg.num_steps} must be >= 1 (temperatures)")
    if cfg.transition not in reference.TRANSITIONS:
        raise ValueError(f"sampler 'ais': transition={cfg.transition!r} unknown; valid: "
                         f"{', '.join(reference.TRANSITIONS)}")
    if int(cfg.num_pilot_particles) < 1:
        raise ValueError(f"sampler 'ais': num_pilot_particles={cfg.num_pilot_particles} must be "
                         ">= 1 (the pilots tune the step size and the mass)")

    def init(key, dim_z: int, dim_embedding: int = 0) -> dict:
        del key, dim_z, dim_embedding
        return {}

    def schedules(params, embedding) -> types.Schedules:
        del params, embedding
        return types.Schedules(beta=reference.annealing_schedule(ais_config(cfg, 1)))

    def run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles: int,
            start: types.Start | None = None) -> types.SamplerOutput:
        """-> SamplerOutput(z [P, d_z] after the last move, log_w [P] the AIS weights,
        Schedules(beta [K + 1]))."""
        del params
        if start is not None:
            raise ValueError("sampler 'ais' starts from exact draws of a Gaussian q0 and takes "
                             "no `start` (a mixture q0 needs model.q0_components=1)")
        base.check_inputs(q0_mean, q0_scale, embedding, num_particles)
        out = reference.ais(key, log_target, q0_mean, q0_scale, ais_config(cfg, num_particles))
        return types.SamplerOutput(out.z, out.log_w, schedules(None, None))

    return base.Sampler("ais", ml_collections.FrozenConfigDict(cfg), init, run, schedules)
