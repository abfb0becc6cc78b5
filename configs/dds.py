"""Denoising diffusion sampler (Vargas, Grathwohl and Doucet 2023): a learned drift on the exact
Ornstein-Uhlenbeck reference (exponential integrator), starting as the Gaussian it warm-starts
from.

K = 8, warm-started from the Gaussian neural process, without the second-order path through
the target's score (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "dds", num_steps=8)
