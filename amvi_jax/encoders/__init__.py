"""Context encoders: D_C -> q0(z | D_C) = N(mean, scale^2) and a task embedding e.

An encoder is a Flax module `(x [N, d_x], y [N, d_y], mask [N]) -> EncoderOutput` that
declares the size of its embedding (`dim_embedding`); the registry maps the names accepted by
`config.model.aggregation` to a constructor from the model config. A new encoder is one module
and one line here.
"""

from amvi_jax.encoders import attention, bayesian, mean
from amvi_jax.encoders.base import Q0_COVARIANCES, EncoderOutput, common_options
from amvi_jax.registry import Registry

REGISTRY = Registry("encoder", {
    "bayesian": lambda m: bayesian.BayesianAggregator(**common_options(m)),
    "mean": lambda m: mean.MeanAggregator(**common_options(m)),
    "attention": attention.from_config,
})
NAMES = REGISTRY.names

__all__ = ["NAMES", "Q0_COVARIANCES", "REGISTRY", "EncoderOutput", "from_config"]


def from_config(model_config):
    """The encoder named by `model_config.aggregation`, built from the model section; invalid
    options raise ValueError naming the config field."""
    return REGISTRY[model_config.aggregation](model_config)
