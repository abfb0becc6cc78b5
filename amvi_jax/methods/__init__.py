"""Meta-learning methods, by the name `config.method` selects.

A method (`methods.base.Method`) checks its config and builds its training set-up; everything
else (resume, loop, validation, checkpoints, evaluation, figures) is shared and lives in
`amvi_jax.training` and `amvi_jax.experiment`. A new method is one module and one line here;
no method module imports another.
"""

from amvi_jax.methods import amortized, gmm_np
from amvi_jax.methods.base import Evaluation, Method, Setup
from amvi_jax.registry import Registry

REGISTRY = Registry("method", {
    "amortized": amortized.METHOD,
    "gmm": gmm_np.METHOD,
})
NAMES = REGISTRY.names

__all__ = ["NAMES", "REGISTRY", "Evaluation", "Method", "Setup"]
