"""Impossible configs are rejected before any work, and the message names the field."""

import pytest

from amvi_jax import configuration
from configs import default


@pytest.mark.parametrize("field, value, match", [
    ("train.num_steps", 0, "config.train.num_steps"),
    ("train.num_particles", -1, "config.train.num_particles"),
    ("train.batch_size", 0, "config.train.batch_size"),
    ("train.learning_rate", -1e-3, "config.train.learning_rate"),
    ("model.aggregation", "max", "valid: bayesian, mean"),
    ("model.std_y_min", 0.0, "config.model.std_y_min"),
    ("model.dim_z", 0, "config.model.dim_z"),
    ("data.benchmark", "sinusoid", "valid names: sinusoid1d"),
    ("data.benchmark", "missing.npz", "no such .npz file"),
    ("eval.num_particles", 0, "config.eval.num_particles"),
    ("eval.context_sizes", (0, 100), "config.eval.context_sizes"),
    ("train.pretrain_steps", 10**9, "config.train.pretrain_steps"),
])
def test_bad_values_are_rejected_naming_the_field(field, value, match):
    config = default.get_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=match):
        configuration.validate(config)


def test_unknown_sampler_lists_valid_names():
    config = default.get_config()
    config.sampler.name = "hmc"
    with pytest.raises(ValueError, match="valid names: gaussian, ula, mcd, cmcd, uha, ldvi"):
        configuration.validate(config)


def test_default_config_is_valid():
    configuration.validate(default.get_config())
