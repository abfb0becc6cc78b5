"""Monte Carlo diffusion (Doucet et al. 2022): learned score in the backward kernel.

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "mcd", num_steps=8)
