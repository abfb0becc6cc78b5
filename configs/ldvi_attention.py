"""LDVI (K = 8) with the attention (set-transformer) encoder: q0 and a richer task embedding
e = [mean, log scale, pooled context] for the score network.

Warm-started from the Gaussian neural process with the same encoder (`configs/np_attention.py`
in the benchmark runner; `train.pretrain_steps` Gaussian steps otherwise).
"""

from configs import default


def get_config():
    config = default.get_config()
    config.model.aggregation = "attention"
    config = default.with_diffusion(config, "ldvi", num_steps=8)
    config.name = "ldvi_attention"
    return config
