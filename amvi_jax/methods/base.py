"""What a meta-learning method provides: config checks and a training set-up.

`experiment.train_and_evaluate` runs every method the same way (resume, loop, validation,
checkpoints, final evaluation, figures); a method only says how to build its model, its train
state and its jitted step for one config and dataset (`Setup`: what the training loop uses),
and what its final evaluation needs besides the parameters (`Evaluation`, which a finished run
rebuilds alone: restoring a run reads its parameters and nothing of the training set-up).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

from amvi_jax.training.loop import Validation
from amvi_jax.training.state import TrainState


class Evaluation(NamedTuple):
    """What the test-split evaluation and its figures need of a method, besides parameters."""

    model: Any  # the model.Model whose `sample` the protocol runs (e.g. the test-time sampler)
    trained: Any  # the model.Model as trained: its params are the checkpoint's
    context_width: int | None = None  # see evaluate.per_task_metrics
    describe: dict = {}  # extra fields of eval.json
    schedules: Callable[[dict], Any] | None = None  # params -> samplers.Schedules (figure)


class Setup(NamedTuple):
    """A method's training set-up for one config and dataset (nothing compiled yet)."""

    model: Any  # the trained model.Model
    state: TrainState  # freshly initialised, step 0
    step: Callable[[TrainState, int], tuple[TrainState, dict]]  # one jitted step
    validation: Validation
    evaluation: Evaluation
    # (state, first step, n) -> (state, metrics [n]): n steps, fused into one call each
    # where the method's step does not change (train.steps_per_call)
    steps: Callable[[TrainState, int, int], tuple[TrainState, dict]] | None = None
    warm_start: Callable[[TrainState], TrainState] | None = None  # fresh starts only
    log_keys: tuple[str, ...] = ("loss", "elbo")


class Method(NamedTuple):
    validate: Callable[[Any], None]  # config -> None; raises ValueError naming the field
    setup: Callable[..., Setup]  # (config, dataset, mesh) -> Setup
    # (config, dataset) -> Evaluation: what a finished run's evaluation needs, without a
    # train state or steps (`experiment.restore`)
    evaluation: Callable[..., Evaluation]
