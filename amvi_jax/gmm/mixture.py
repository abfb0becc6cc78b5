"""Full-covariance Gaussian mixtures and their trust-region natural-gradient (MORE) update.

The variational family of GMM-NP (Volpp et al., ICLR 2023), fitted as in Arenz et al. (2022,
"A Unified Perspective on Natural Gradient VI with Gaussian Mixture Models") and in the authors'
reference code (ALRhub/gmm_np, `multi_daft_vi`):

    q(z) = sum_k w_k N(z; mu_k, Sigma_k),      Sigma_k = L_k L_k^T  (L_k lower triangular)

One update, for ONE mixture and any unnormalised log density log gamma (vmap outside):

1. Draw S samples from every component; reward R(z) = log gamma(z) - log q(z) with q the
   current mixture, and its gradient (jax.grad; first-order information only).
2. Quadratic reward model per component by Stein's lemma:
       H_k = sym(Sigma_k^{-1} E_{q_k}[(z - mu_k) grad R(z)^T])  ~ E_{q_k}[hess R],
       g_k = E_{q_k}[grad R],       linear term r_k = g_k - H_k mu_k.
3. Natural-gradient step in the natural parameters with step 1/eta, eta >= 1:
       Lambda' = Lambda_k - H_k / eta,      Lambda' mu' = Lambda_k mu_k + r_k / eta,
   i.e. mu' = mu_k + Lambda'^{-1} g_k / eta. eta = 1 is the full natural-gradient step (exact
   for a Gaussian target with exact expectations). eta is the smallest value in [1, eta_max]
   with KL(q_k' || q_k) <= epsilon and Lambda' positive definite, found by bisection in log eta.
   That is the minimiser of MORE's dual: its derivative in eta is epsilon - KL(q_eta || q_k),
   and KL is decreasing in eta. If even eta_max violates the bound the component is kept.
4. Weights: log w_k <- log w_k + beta * mean_s R(z_{k,s}), renormalised by logsumexp (the
   closed-form "direct" categorical update of the reference with beta = 1; not KL-bounded).

Every candidate eta costs one d x d Cholesky factorisation (the positive-definiteness test)
and two triangular solves, as in the reference's `get_kl`; linear algebra is plain jnp
(`amvi_jax.gmm.linalg`) because batched LAPACK calls deadlock XLA's CPU thread pool here.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from amvi_jax.gmm import linalg

LogDensity = Callable[[jax.Array], jax.Array]
_LOG_2PI = math.log(2.0 * math.pi)


class GMM(NamedTuple):
    """A Gaussian mixture; add leading axes (tasks, ...) by vmap.

    Attributes:
      log_w: [K] log weights, normalised (logsumexp = 0).
      mean: [K, d] component means.
      chol: [K, d, d] lower-triangular Cholesky factors of the component covariances.
    """

    log_w: jax.Array
    mean: jax.Array
    chol: jax.Array


class UpdateInfo(NamedTuple):
    """Diagnostics of one update of ONE mixture (leading axes added by vmap / scan).

    Attributes:
      kl: [K] KL(new component || old component); 0 where the step was rejected.
      eta: [K] chosen eta (the step is 1 / eta); eta_max where rejected.
      accepted: [K] bool, False where no eta in [1, eta_max] met the bound (component kept).
      mean_reward: [K] mean of R = log gamma - log q over each component's samples.
      elbo: [] stratified ELBO estimate of the old mixture, sum_k w_k mean_reward_k.
    """

    kl: jax.Array
    eta: jax.Array
    accepted: jax.Array
    mean_reward: jax.Array
    elbo: jax.Array


def isotropic(means: jax.Array, scale: float = 1.0) -> GMM:
    """Equal weights and covariance scale^2 I: means [K, d] -> GMM with K components."""
    num_components, dim = means.shape
    chol = jnp.broadcast_to(scale * jnp.eye(dim, dtype=means.dtype), (num_components, dim, dim))
    log_w = jnp.full((num_components,), -math.log(num_components), means.dtype)
    return GMM(log_w, means, chol)


def from_standard_normal(dim: int) -> GMM:
    """N(0, I) as a one-component mixture."""
    return isotropic(jnp.zeros((1, dim)))


def component_log_probs(gmm: GMM, z: jax.Array) -> jax.Array:
    """log N(z; mu_k, Sigma_k) for every component: z [d] -> [K].

    The inverse factors do not depend on z, so under vmap over samples they are computed once.
    """
    chol_inv = jax.vmap(linalg.tril_inverse)(gmm.chol)
    u = jnp.einsum("kij,kj->ki", chol_inv, z - gmm.mean)
    log_det = jnp.sum(jnp.log(jnp.diagonal(gmm.chol, axis1=-2, axis2=-1)), axis=-1)
    return -0.5 * jnp.sum(u**2, axis=-1) - log_det - 0.5 * gmm.mean.shape[-1] * _LOG_2PI


def log_prob(gmm: GMM, z: jax.Array) -> jax.Array:
    """log q(z): z [d] -> scalar."""
    return logsumexp(gmm.log_w + component_log_probs(gmm, z))


def sample_components(gmm: GMM, key: jax.Array, num_samples: int) -> jax.Array:
    """num_samples draws from every component -> [K, S, d]."""
    eps = jax.random.normal(key, (*gmm.mean.shape[:1], num_samples, gmm.mean.shape[1]),
                            gmm.mean.dtype)
    return gmm.mean[:, None, :] + jnp.einsum("kij,ksj->ksi", gmm.chol, eps)


def sample(gmm: GMM, key: jax.Array, num_samples: int) -> jax.Array:
    """num_samples draws from the mixture -> [S, d]."""
    key_c, key_z = jax.random.split(key)
    comp = jax.random.categorical(key_c, gmm.log_w, shape=(num_samples,))
    eps = jax.random.normal(key_z, (num_samples, gmm.mean.shape[1]), gmm.mean.dtype)
    return gmm.mean[comp] + jnp.einsum("sij,sj->si", gmm.chol[comp], eps)


def precision(chol: jax.Array) -> jax.Array:
    """Sigma^{-1} from the lower Cholesky factor of Sigma: [d, d] -> [d, d]."""
    chol_inv = linalg.tril_inverse(chol)
    return chol_inv.T @ chol_inv


def gaussian_kl(mean_p, chol_p, mean_q, chol_q) -> jax.Array:
    """KL(N(mean_p, L_p L_p^T) || N(mean_q, L_q L_q^T)): [d], [d, d], [d], [d, d] -> scalar."""
    m = linalg.solve_lower(chol_q, chol_p)  # L_q^{-1} L_p
    u = linalg.solve_lower(chol_q, mean_p - mean_q)
    logdet = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol_q)) - jnp.log(jnp.diagonal(chol_p)))
    return 0.5 * (jnp.sum(m**2) + u @ u - mean_p.shape[-1] + logdet)


def component_kl(new: GMM, old: GMM) -> jax.Array:
    """KL(new_k || old_k) for every component -> [K]."""
    return jax.vmap(gaussian_kl)(new.mean, new.chol, old.mean, old.chol)


def stein_quadratic_model(mean: jax.Array, chol: jax.Array, z: jax.Array,
                          grad: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Expected Hessian and gradient of a reward under N(mean, L L^T), from gradients only.

    Stein's lemma: E[hess R] = Sigma^{-1} E[(z - mu) grad R^T]; the Monte-Carlo estimate is
    symmetrised (the true Hessian is symmetric, the estimate is not).

    Args:
      mean: [d]; chol: [d, d] lower Cholesky factor of the covariance.
      z: [S, d] samples of N(mean, chol chol^T); grad: [S, d] grad R at those samples.

    Returns:
      (hessian [d, d], gradient [d]); the linear term of the quadratic model is
      gradient - hessian @ mean.
    """
    chex.assert_rank([mean, chol, z, grad], [1, 2, 2, 2])
    chex.assert_equal_shape([z, grad])
    cross = jnp.einsum("si,sj->ij", z - mean, grad) / z.shape[0]
    hess = precision(chol) @ cross
    return 0.5 * (hess + hess.T), jnp.mean(grad, axis=0)


def _trust_region_step(mean, chol, hess, grad, kl_bound, eta_max, num_bisection):
    """MORE step of ONE component under KL(new || old) <= kl_bound (see the module docstring).

    mean [d], chol [d, d], hess [d, d], grad [d] -> (mean [d], chol [d, d], kl, eta, accepted).
    """
    dim = mean.shape[-1]
    chol_inv = linalg.tril_inverse(chol)
    prec = chol_inv.T @ chol_inv
    log_det_old = 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))

    def candidate(log_eta):
        """-> (KL(q_eta || q_old), NaN if not positive definite; new precision; new mean)."""
        eta = jnp.exp(log_eta)
        new_prec = prec - hess / eta
        new_prec = 0.5 * (new_prec + new_prec.T)
        u = linalg.cholesky(new_prec)  # NaN unless positive definite
        # Lambda' mu' = Lambda mu + (g - H mu) / eta  <=>  mu' = mu + Lambda'^{-1} g / eta.
        new_mean = mean + linalg.cho_solve(u, grad) / eta
        trace = jnp.sum(linalg.solve_lower(u, chol_inv.T) ** 2)  # tr(Lambda_old Sigma_new)
        maha = jnp.sum((chol_inv @ (new_mean - mean)) ** 2)
        log_det_new = -2.0 * jnp.sum(jnp.log(jnp.diagonal(u)))
        kl = 0.5 * (trace + maha - dim + log_det_old - log_det_new)
        return kl, new_prec, new_mean

    feasible = lambda log_eta: candidate(log_eta)[0] <= kl_bound  # NaN compares False

    def bisect(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        ok = feasible(mid)
        return jnp.where(ok, lo, mid), jnp.where(ok, mid, hi)

    log_eta_max = jnp.log(jnp.asarray(eta_max, mean.dtype))
    _, hi = jax.lax.fori_loop(0, num_bisection, bisect,
                              (jnp.zeros((), mean.dtype), log_eta_max))
    # The feasible end of the bracket (the reference's "less greedy" choice); the full step
    # eta = 1 whenever it already satisfies the bound.
    log_eta = jnp.where(feasible(0.0), 0.0, hi)
    kl, new_prec, new_mean = candidate(log_eta)
    new_chol = linalg.cholesky_of_inverse(new_prec)
    accepted = ((kl <= kl_bound) & jnp.all(jnp.isfinite(new_mean))
                & jnp.all(jnp.isfinite(new_chol)))
    return (jnp.where(accepted, new_mean, mean), jnp.where(accepted, new_chol, chol),
            jnp.where(accepted, kl, 0.0), jnp.where(accepted, jnp.exp(log_eta), eta_max),
            accepted)


def update(gmm: GMM, key: jax.Array, log_target: LogDensity, num_samples: int,
           kl_bound: float, weight_step_size: float = 1.0, eta_max: float = 1e5,
           num_bisection: int = 30) -> tuple[GMM, UpdateInfo]:
    """One trust-region natural-gradient update of all components and the weights.

    Args:
      gmm: the current mixture (K components in d dimensions).
      key: PRNG key.
      log_target: z [d] -> scalar, the unnormalised log density log gamma to approximate.
      num_samples: samples per component S.
      kl_bound: epsilon, the per-component bound on KL(new || old).
      weight_step_size: beta of the weight update (1 = the reference's direct update).
      eta_max: largest eta (smallest step 1 / eta_max) tried by the bisection.
      num_bisection: bisection steps in log eta over [0, log eta_max].

    Returns:
      (new GMM, UpdateInfo).
    """
    chex.assert_rank([gmm.log_w, gmm.mean, gmm.chol], [1, 2, 3])
    z = sample_components(gmm, key, num_samples)  # [K, S, d]
    reward = lambda zz: log_target(zz) - log_prob(gmm, zz)
    r, g = jax.vmap(jax.vmap(jax.value_and_grad(reward)))(z)  # [K, S], [K, S, d]
    hess, grad = jax.vmap(stein_quadratic_model)(gmm.mean, gmm.chol, z, g)
    step = lambda m, c, h, gr: _trust_region_step(m, c, h, gr, kl_bound, eta_max, num_bisection)
    mean, chol, kl, eta, accepted = jax.vmap(step)(gmm.mean, gmm.chol, hess, grad)

    mean_reward = jnp.mean(r, axis=1)
    log_w = gmm.log_w + weight_step_size * mean_reward
    log_w = log_w - logsumexp(log_w)
    log_w = jnp.where(jnp.all(jnp.isfinite(log_w)), log_w, gmm.log_w)
    w_old = jnp.exp(gmm.log_w)
    elbo = jnp.sum(jnp.where(w_old > 0, w_old * mean_reward, 0.0))
    chex.assert_shape([mean], gmm.mean.shape)
    return GMM(log_w, mean, chol), UpdateInfo(kl, eta, accepted, mean_reward, elbo)


def fit(gmm: GMM, key: jax.Array, log_target: LogDensity, num_steps: int,
        **update_kwargs) -> tuple[GMM, UpdateInfo]:
    """num_steps updates under lax.scan -> (final GMM, UpdateInfo with a leading [num_steps])."""
    def body(g, k):
        return update(g, k, log_target, **update_kwargs)

    return jax.lax.scan(body, gmm, jax.random.split(key, num_steps))
