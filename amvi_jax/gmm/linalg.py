"""Small dense linear algebra (d <= ~16) in plain jnp: Cholesky and triangular solves.

Why not jnp.linalg / jax.scipy.linalg: on CPU those lower to LAPACK custom calls that split
their batch over XLA's intra-op thread pool and block on it. Under vmap over tasks, components
and samples several of them run at once, and on a 2-core machine the pool then deadlocks
(observed with jaxlib 0.10.2: threads parked in lapack_strsm_ffi's BlockingCounter::Wait, the
step never returns). The mixture update needs thousands of 3 x 3 factorisations per step, for
which these unrolled loops of vectorised row operations are also faster than a library call.

All functions take ONE matrix (vmap outside); d is static and the loops unroll over it.
Non-positive-definite input gives NaN in `cholesky` (sqrt of a negative pivot), which callers
use as the positive-definiteness test.
"""

import jax
import jax.numpy as jnp


def cholesky(a: jax.Array) -> jax.Array:
    """Lower L with L L^T = a: [d, d] -> [d, d]; NaN entries when a is not positive definite."""
    d = a.shape[-1]
    rows = jnp.arange(d)
    chol = jnp.zeros_like(a)
    for j in range(d):
        col = a[:, j] - chol[:, :j] @ chol[j, :j]
        pivot = jnp.sqrt(col[j])
        chol = chol.at[:, j].set(jnp.where(rows >= j, col / pivot, 0.0))
    return chol


def solve_lower(chol: jax.Array, b: jax.Array) -> jax.Array:
    """x with chol x = b by forward substitution: [d, d], [d] or [d, m] -> like b."""
    x = jnp.zeros_like(b)
    for i in range(chol.shape[-1]):
        x = x.at[i].set((b[i] - chol[i, :i] @ x[:i]) / chol[i, i])
    return x


def tril_inverse(chol: jax.Array) -> jax.Array:
    """chol^{-1} of a lower-triangular matrix: [d, d] -> [d, d] (lower triangular)."""
    return solve_lower(chol, jnp.eye(chol.shape[-1], dtype=chol.dtype))


def cholesky_of_inverse(precision: jax.Array) -> jax.Array:
    """Lower Cholesky factor of precision^{-1}, without forming the inverse: [d, d] -> [d, d].

    With J the reversal permutation and V = cholesky(J P J):  P^{-1} = (J V^{-T} J)(.)^T and
    J V^{-T} J is lower triangular with a positive diagonal.
    """
    v = cholesky(precision[::-1, ::-1])
    return tril_inverse(v).T[::-1, ::-1]


def solve_lower_transpose(chol: jax.Array, b: jax.Array) -> jax.Array:
    """x with chol^T x = b by back substitution: [d, d], [d] or [d, m] -> like b."""
    d = chol.shape[-1]
    x = jnp.zeros_like(b)
    for i in reversed(range(d)):
        x = x.at[i].set((b[i] - chol[i + 1:, i] @ x[i + 1:]) / chol[i, i])
    return x


def cho_solve(chol: jax.Array, b: jax.Array) -> jax.Array:
    """(chol chol^T)^{-1} b: [d, d], [d] or [d, m] -> like b."""
    return solve_lower_transpose(chol, solve_lower(chol, b))
