"""Orbax checkpoints of the train state: the last ones (to resume) and the best by validation.

A checkpoint that cannot be restored (truncated or corrupted files, e.g. after a crash while it
was written) does not stop a resume: it is reported by step and path, moved aside to
`checkpoints/damaged/<manager>/<step>`, and the next older one is tried.
"""

import json
import os
import shutil

import jax
import orbax.checkpoint as ocp
from absl import logging


class Checkpoints:
    """Two orbax managers under `workdir/checkpoints/{last,best}`.

    `best` keeps one step, chosen by the caller (validation predictive log-likelihood); its score
    lives in `best.json` beside it so a resumed run keeps comparing against it.
    """

    def __init__(self, workdir: str, max_to_keep: int = 2):
        self.root = os.path.join(os.path.abspath(workdir), "checkpoints")
        opts = lambda n: ocp.CheckpointManagerOptions(max_to_keep=n, create=True)
        self.last = ocp.CheckpointManager(os.path.join(self.root, "last"),
                                          options=opts(max_to_keep))
        self.best = ocp.CheckpointManager(os.path.join(self.root, "best"), options=opts(1))
        self._best_file = os.path.join(self.root, "best.json")

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

    def _restore(self, manager, template, params_only: bool = False):
        """The newest step of `manager` that restores into `template`'s structure, or None;
        with `params_only` (template: the params tree) -> (params, step), reading nothing else
        of the saved state (GMM-NP's meta-training mixtures grow with the number of tasks)."""
        abstract = jax.tree.map(_abstract, template)
        if params_only:
            abstract = {"params": abstract}
            args = ocp.args.PyTreeRestore(
                abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(abstract),
                partial_restore=True)
        else:
            args = ocp.args.StandardRestore(abstract)
        for step in sorted(manager.all_steps(), reverse=True):
            try:
                restored = manager.restore(step, args=args)
            except Exception as err:  # noqa: BLE001 - any storage error means "damaged"
                self._set_aside(manager, step, err)
                continue
            return (restored["params"], step) if params_only else restored
        return None

    def _set_aside(self, manager, step: int, err: Exception) -> None:
        path = os.path.join(str(manager.directory), str(step))
        target = os.path.join(self.root, "damaged", os.path.basename(str(manager.directory)),
                              str(step))
        logging.warning("checkpoint %s could not be restored (%s: %s); moved to %s, trying an "
                        "older one", path, type(err).__name__, str(err).splitlines()[0][:200],
                        target)
        if jax.process_index() == 0 and os.path.exists(path):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(path, target)
        manager.reload()

    def restore_last(self, template):
        """The newest intact saved state shaped like `template`, or None if there is none."""
        return self._restore(self.last, template)

    def restore_best(self, template):
        return self._restore(self.best, template)

    def best_params(self, template):
        """(params, step) of the best checkpoint, params shaped like `template`; or None."""
        return self._restore(self.best, template, params_only=True)

    def last_params(self, template):
        return self._restore(self.last, template, params_only=True)

    def wait(self) -> None:
        self.last.wait_until_finished()
        self.best.wait_until_finished()

    def close(self) -> None:
        self.last.close()
        self.best.close()


def _abstract(leaf) -> jax.ShapeDtypeStruct:
    """A leaf's shape and dtype, placed on the first device where it has no placement (a
    template from `jax.eval_shape`), so that orbax need not guess the sharding."""
    if isinstance(leaf, jax.ShapeDtypeStruct) and leaf.sharding is None:
        return jax.ShapeDtypeStruct(leaf.shape, leaf.dtype,
                                    sharding=jax.sharding.SingleDeviceSharding(jax.devices()[0]))
    return ocp.utils.to_shape_dtype_struct(leaf)


def restore_params_from(workdir: str, template) -> tuple[dict, int]:
    """(params, step) of the best (else last) checkpoint of the run in `workdir`; `template`
    is its params tree, concrete or abstract (`jax.eval_shape` of the model's init). Only the
    parameters are read, not the optimiser state or a method's extra state."""
    ckpts = Checkpoints(workdir)
    try:
        restored = ckpts.best_params(template)
        if restored is None:
            restored = ckpts.last_params(template)
    finally:
        ckpts.close()
    if restored is None:
        raise FileNotFoundError(f"{workdir!r} holds no checkpoint that restores")
    return restored
