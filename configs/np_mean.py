"""Amortized Gaussian neural process (K = 0) with mean context aggregation."""

from configs import default


def get_config():
    config = default.get_config()
    config.name = "np_mean"
    config.model.aggregation = "mean"
    return config
