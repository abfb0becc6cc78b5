"""Amortized Gaussian neural process (K = 0) with the attention (set-transformer) encoder."""

from configs import default


def get_config():
    config = default.get_config()
    config.name = "np_attention"
    config.model.aggregation = "attention"
    return config
