"""Uncorrected Hamiltonian annealing (underdamped, learned schedules, damping, mass).

K = 8, warm-started from the Gaussian neural process (see `default.with_diffusion`).
"""

from configs import default


def get_config():
    config = default.with_diffusion(default.get_config(), "uha", num_steps=8)
    # As for LDVI and DDS: the target's score is a constant in the backward pass (the bound is
    # the same), 3.2x the diffusion steps per second, and the model within one s.e. on 3 seeds
    # (-0.14 ± 0.17 nats on test, -0.15 ± 0.30 on validation; docs/RESULTS.md section 12.1).
    config.sampler.stop_grad_score = True
    return config
