"""Unadjusted Langevin annealing (overdamped, nothing learned but schedules).

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "ula", num_steps=8)
