"""Langevin diffusion VI (Geffner & Domke 2023): UHA with a learned backward momentum kernel.

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    return default.with_diffusion(default.get_config(), "ldvi", num_steps=8)
