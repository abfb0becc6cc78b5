"""The training step against the number of meta-training tasks T: np and GMM-NP.

Neither step should cost more with more tasks: an amortized step draws its B tasks by Floyd's
algorithm (`data.sample_task_indices`) and a GMM-NP step gathers and writes back only its B
mixtures, its epoch's permutation drawn once per epoch. Each method's own step
(`methods.REGISTRY[...].setup`, the one training runs) on the benchmark of `timing.make_config`
with T meta-training tasks, all timed round-robin. GMM-NP's per-task state does grow with T;
its bytes are the setup's.
"""

from amvi_jax import methods, workdir
from configs import gmm as gmm_config
from experiments.measure import timing

METHODS = ("amortized", "gmm")


class _Stepper:
    """Calls a method's step, feeding each new state into the next call."""

    def __init__(self, setup):
        self.step, self.state, self.index = setup.step, setup.state, 0

    def __call__(self):
        self.state, _ = self.step(self.state, self.index)
        self.index += 1
        return self.state


def _config(settings: timing.Settings, method: str, num_tasks: int):
    """configs/default.py (np, as the settings shape it) or configs/gmm.py, with T tasks."""
    config = timing.make_config(settings) if method == "amortized" else gmm_config.get_config()
    config.data.num_tasks = num_tasks
    config.data.data_dir = settings.data_dir
    return config


def measure(settings: timing.Settings) -> list[dict]:
    """-> one row per T: num_tasks, amortized_ms, gmm_ms (median step), gmm_state_bytes."""
    steppers, state_bytes = {}, {}
    for num_tasks in settings.scaling_tasks:
        for method in METHODS:
            config = _config(settings, method, num_tasks)
            setup = methods.REGISTRY[method].setup(config, workdir.load_data(config))
            steppers[(method, num_tasks)] = _Stepper(setup)
        state_bytes[num_tasks] = setup.evaluation.describe["posterior_state_bytes"]
    # Steps of a few ms: bursts of them per round rest the median on more samples.
    seconds = timing.interleaved_seconds(steppers, settings.repeats,
                                         bursts={name: 10 for name in steppers})
    return [dict(num_tasks=t, **{f"{m}_ms": 1e3 * seconds[(m, t)] for m in METHODS},
                 gmm_state_bytes=state_bytes[t]) for t in settings.scaling_tasks]
