"""Samplers behind one interface; `get(name, **overrides)` builds one from its default config.

    sampler = amvi_jax.samplers.get("ldvi", num_steps=16)
    params = sampler.init(key, dim_z=2, dim_embedding=0)
    out = sampler.run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles=1024)
    out.z          # [P, d_z]
    out.log_w      # [P]; ELBO = mean(log_w), log Z-hat = logsumexp(log_w) - log P
    out.schedules  # Schedules(beta, step_size, damping, mass); None where a kernel has none

A registry entry has `default_config()` and `build(config) -> Sampler`: a diffusion kernel
(`driver.Kernel`), the K = 0 `gaussian` module, or a test-time sampler with nothing to learn
(`ais`: Metropolis-corrected AIS from q0, the evaluation's compute dial; not for training).
Adding a sampler is one line here.
"""

import ml_collections

from amvi_jax.registry import Registry
from amvi_jax.samplers import ais, dds, dis, gaussian, overdamped, underdamped
from amvi_jax.samplers.base import Sampler
from amvi_jax.types import SamplerOutput, Schedules, Start

REGISTRY = Registry("sampler", {
    "gaussian": gaussian,
    "ula": overdamped.ULA,
    "mcd": overdamped.MCD,
    "cmcd": overdamped.CMCD,
    "uha": underdamped.UHA,
    "ldvi": underdamped.LDVI,
    "dis": dis.DIS,
    "dds": dds.DDS,
    "ais": ais,
})
NAMES = REGISTRY.names
TEST_TIME = ("ais",)  # no parameters and no pathwise gradient: evaluation only
DIFFUSIONS = tuple(name for name in NAMES if name not in ("gaussian", *TEST_TIME))
TRAINABLE = ("gaussian", *DIFFUSIONS)

__all__ = ["DIFFUSIONS", "NAMES", "REGISTRY", "TEST_TIME", "TRAINABLE", "Sampler",
           "SamplerOutput", "Schedules", "Start", "default_config", "from_config", "get"]


def default_config(name: str) -> ml_collections.ConfigDict:
    """The default options of sampler `name` (without its name): only those it uses."""
    return REGISTRY[name].default_config()


def get(name: str, **overrides) -> Sampler:
    """Builds sampler `name`; keyword arguments override fields of its default config."""
    cfg = default_config(name)
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ValueError(f"sampler {name!r} has no option(s) {unknown}; valid: {sorted(cfg)}")
    cfg.update(overrides)
    return REGISTRY[name].build(cfg)


def from_config(sampler_config) -> Sampler:
    """Builds a sampler from a config section with a `name` field plus any of its options."""
    options = {k: v for k, v in sampler_config.items() if k != "name"}
    return get(sampler_config.name, **options)
