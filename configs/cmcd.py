"""Controlled Monte Carlo diffusion (Vargas et al. 2024): learned control in both kernels.

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "cmcd", num_steps=8)
