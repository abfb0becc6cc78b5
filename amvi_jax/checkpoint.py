"""Orbax checkpoints of the train state: the last ones (to resume) and the best by validation."""

import json
import os

import jax
import orbax.checkpoint as ocp


class Checkpoints:
    """Two orbax managers under `workdir/checkpoints/{last,best}`.

    `best` keeps one step, chosen by the caller (validation predictive log-likelihood); its score
    lives in `best.json` beside it so a resumed run keeps comparing against it.
    """

    def __init__(self, workdir: str, max_to_keep: int = 2):
        root = os.path.join(os.path.abspath(workdir), "checkpoints")
        opts = lambda n: ocp.CheckpointManagerOptions(max_to_keep=n, create=True)
        self.last = ocp.CheckpointManager(os.path.join(root, "last"), options=opts(max_to_keep))
        self.best = ocp.CheckpointManager(os.path.join(root, "best"), options=opts(1))
        self._best_file = os.path.join(root, "best.json")

    def save_last(self, step: int, state) -> None:
        if step not in self.last.all_steps():
            self.last.save(step, args=ocp.args.StandardSave(state))

    def save_best(self, step: int, state, score: float) -> None:
        self.best.wait_until_finished()
        if step not in self.best.all_steps():
            self.best.save(step, args=ocp.args.StandardSave(state))
        self.best.wait_until_finished()
        if jax.process_index() == 0:
            with open(self._best_file, "w") as f:
                json.dump(dict(step=int(step), score=float(score)), f)

    def best_score(self) -> float:
        if not os.path.exists(self._best_file):
            return -float("inf")
        with open(self._best_file) as f:
            return float(json.load(f)["score"])

    @staticmethod
    def _restore(manager, template):
        step = manager.latest_step()
        if step is None:
            return None
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        return manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def restore_last(self, template):
        """The latest saved state shaped like `template`, or None if there is none."""
        return self._restore(self.last, template)

    def restore_best(self, template):
        return self._restore(self.best, template)

    def wait(self) -> None:
        self.last.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.last.close()
        self.best.close()


def restore_params_from(workdir: str, template):
    """The best (else last) state of another run's workdir, shaped like `template`."""
    ckpts = Checkpoints(workdir)
    try:
        state = ckpts.restore_best(template)
        if state is None:
            state = ckpts.restore_last(template)
    finally:
        ckpts.close()
    if state is None:
        raise FileNotFoundError(f"train.init_from={workdir!r} holds no checkpoint")
    return state
