"""Samplers behind one interface; `get(name, **overrides)` builds one from its default config.

    sampler = amvi_jax.samplers.get("ldvi", num_steps=16)
    params = sampler.init(key, dim_z=2, dim_embedding=0)
    out = sampler.run(params, key, log_target, q0_mean, q0_scale, embedding, num_particles=1024)
    out.z      # [P, d_z]
    out.log_w  # [P]; ELBO = mean(log_w), log Z-hat = logsumexp(log_w) - log P
"""

import ml_collections

from amvi_jax.samplers import gaussian, overdamped, underdamped
from amvi_jax.samplers.base import Sampler, SamplerOutput

# name -> (default config factory, constructor taking the config)
_REGISTRY = {
    "gaussian": (gaussian.default_config, gaussian.make),
    "ula": (overdamped.default_config, lambda c: overdamped.make(c, "ula")),
    "mcd": (overdamped.default_config, lambda c: overdamped.make(c, "mcd")),
    "cmcd": (overdamped.default_config, lambda c: overdamped.make(c, "cmcd")),
    "uha": (underdamped.default_config, lambda c: underdamped.make(c, "uha")),
    "ldvi": (underdamped.default_config, lambda c: underdamped.make(c, "ldvi")),
}
NAMES = tuple(_REGISTRY)

__all__ = ["NAMES", "Sampler", "SamplerOutput", "default_config", "from_config", "get"]


def default_config(name: str) -> ml_collections.ConfigDict:
    """The default config of sampler `name` (without its name)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown sampler {name!r}; valid names: {', '.join(NAMES)}")
    return _REGISTRY[name][0]()


def get(name: str, **overrides) -> Sampler:
    """Builds sampler `name`; keyword arguments override fields of its default config."""
    cfg = default_config(name)
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ValueError(f"sampler {name!r} has no option(s) {unknown}; valid: {sorted(cfg)}")
    cfg.update(overrides)
    return _REGISTRY[name][1](cfg)


def from_config(sampler_config) -> Sampler:
    """Builds a sampler from a config section with a `name` field plus any of its options."""
    options = {k: v for k, v in sampler_config.items() if k != "name"}
    return get(sampler_config.name, **options)
