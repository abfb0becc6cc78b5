"""Full-covariance Gaussian mixtures fitted by trust-region natural gradients (GMM-NP's VI).

`mixture` holds the distribution (state, density, sampling) and the MORE-style update of
Arenz et al. (2022) that Volpp et al. (ICLR 2023) use per task; `amvi_jax.gmm_np` builds the
meta-learning method on top of it.
"""

from amvi_jax.gmm.mixture import (
    GMM,
    UpdateInfo,
    component_kl,
    fit,
    from_standard_normal,
    gaussian_kl,
    isotropic,
    log_prob,
    precision,
    sample,
    sample_components,
    stein_quadratic_model,
    update,
)

__all__ = [
    "GMM",
    "UpdateInfo",
    "component_kl",
    "fit",
    "from_standard_normal",
    "gaussian_kl",
    "isotropic",
    "log_prob",
    "precision",
    "sample",
    "sample_components",
    "stein_quadratic_model",
    "update",
]
