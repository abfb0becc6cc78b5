"""Time-reversed diffusion sampler (Berner, Richter and Ullrich 2024): a learned control on the
Ornstein-Uhlenbeck reference whose marginal is q0, Euler-Maruyama discretised.

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "dis", num_steps=8)
