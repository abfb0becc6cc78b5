"""Amortized Gaussian neural process (K = 0) with Bayesian context aggregation."""

from configs import default


def get_config():
    config = default.get_config()
    config.name = "np"
    return config
