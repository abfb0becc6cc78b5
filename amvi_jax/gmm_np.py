"""GMM-NP (Volpp et al., ICLR 2023): a non-amortized Gaussian-mixture posterior per task.

The DESIGN section 7 baseline. The decoder is shared by all tasks as in the rest of the
library; the task posterior is NOT amortized: every meta-training context set keeps its own
full-covariance K-component mixture, fitted by trust-region natural-gradient (MORE) updates
(`amvi_jax.gmm`), and every new test task gets a fresh mixture fitted from scratch.

Faithful to the authors' reference code (ALRhub/gmm_np) where it matters:
- Meta-training keeps one mixture per (task, context set): S fixed context sets per task,
  drawn once, sizes cycling through 1..N (the reference's SubtaskGenerator, 32 sets per task
  for 64 x 16 tasks = 2048 "subtasks"). `gmm.num_context_sets = 0` instead fits one posterior
  per task on its full data.
- Each step takes a minibatch of those subtasks (epoch-wise reshuffling, every subtask once
  per epoch), then (1) one Adam step on the decoder on the ELBO with z ~ q stop-gradient, whose
  decoder gradient is that of E_q[log p(D_C | z)], and (2) one mixture update per subtask
  under the updated decoder (the reference's order: model learner, then posterior learner).
- Posteriors start at the prior's components when the prior is Volpp's fixed GMM prior
  (`gmm.prior_components = K`), else at K components N(m_k, I), m_k ~ N(0, I) drawn once.
- Test time: the decoder is frozen and a fresh mixture is fitted per test task and context
  size for `gmm.num_test_steps` updates (vectorised over tasks); S weighted particles
  z_s ~ q, log w_s = log gamma(z_s) - log q(z_s) then feed `amvi_jax.evaluate` unchanged.

`GMMNeuralProcess` duck-types the parts of `model.NeuralProcess` that evaluation and plotting
use (`sample`, `predict`, `log_target`, `dim_z`), so `evaluate.evaluate` and
`plotting.plot_predictions` run on it as they are.
"""

import dataclasses
import json
import os
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from amvi_jax import checkpoint, configuration, evaluate, networks, plotting
from amvi_jax import gmm as gmm_lib
from amvi_jax import train as train_lib
from amvi_jax.samplers.base import SamplerOutput, log_normal_diag


@dataclasses.dataclass(frozen=True)
class GMMNeuralProcess:
    """Decoder + per-task mixture posteriors. Every method works on ONE task (vmap outside).

    params = {"decoder": flax params, "prior": GMM [K_p], "posterior_init": GMM [K]}; only the
    decoder is trained, the prior and the initial posterior are fixed draws from the seed.
    """

    decoder: networks.Decoder
    dim_z: int
    num_components: int
    prior_components: int = 0  # 0: N(0, I); > 0: Volpp's fixed GMM prior with that many
    prior_scale: float = 1.0
    num_samples_per_component: int = 18
    kl_bound: float = 1e-3
    weight_step_size: float = 1.0
    eta_max: float = 1e5
    num_bisection: int = 30
    num_test_steps: int = 300

    name = "gmm"

    def init(self, key, dim_x: int, dim_y: int) -> dict:
        del dim_y  # the decoder infers its input width at init
        k_dec, k_prior, k_post = jax.random.split(key, 3)
        decoder = self.decoder.init(k_dec, jnp.zeros((1, dim_x)), jnp.zeros((self.dim_z,)))
        k = self.num_components
        if self.prior_components:
            # Volpp's prior: equal weights, means ~ N(0, s^2 I), covariances s^2 I, fixed.
            means = self.prior_scale * jax.random.normal(
                k_prior, (self.prior_components, self.dim_z))
            prior = gmm_lib.isotropic(means, self.prior_scale)
        else:
            prior = gmm_lib.from_standard_normal(self.dim_z)
        if self.prior_components == k:
            # The reference starts every posterior at the prior (a copy: distinct buffers, so
            # the donated train state never holds one buffer twice).
            posterior_init = jax.tree.map(jnp.copy, prior)
        else:
            means = self.prior_scale * jax.random.normal(k_post, (k, self.dim_z))
            posterior_init = gmm_lib.isotropic(means, self.prior_scale)
        return dict(decoder=decoder, prior=prior, posterior_init=posterior_init)

    def predict(self, params, x, z) -> tuple[jax.Array, jax.Array]:
        """x [N, d_x], z [d_z] -> (mean [N, d_y], std [d_y])."""
        return self.decoder.apply(params["decoder"], x, z)

    def log_prior(self, params, z) -> jax.Array:
        """log p(z): z [d_z] -> scalar."""
        return gmm_lib.log_prob(params["prior"], z)

    def log_likelihood(self, params, x, y, mask, z) -> jax.Array:
        """sum_n mask_n log p(y_n | x_n, z): x [N, d_x], y [N, d_y], mask [N], z [d_z] -> []."""
        chex.assert_rank([x, y, mask, z], [2, 2, 1, 1])
        mean, std = self.predict(params, x, z)
        return jnp.sum(mask * log_normal_diag(y, mean, std**2))

    def log_target(self, params, x, y, mask):
        """The unnormalised task posterior gamma_C as a function z [d_z] -> scalar."""
        return lambda z: self.log_prior(params, z) + self.log_likelihood(params, x, y, mask, z)

    def _update_kwargs(self) -> dict:
        return dict(num_samples=self.num_samples_per_component, kl_bound=self.kl_bound,
                    weight_step_size=self.weight_step_size, eta_max=self.eta_max,
                    num_bisection=self.num_bisection)

    def update_posterior(self, params, key, posterior: gmm_lib.GMM, x, y, mask):
        """One mixture update for the context `mask`: GMM [K, ...] -> (GMM, UpdateInfo)."""
        return gmm_lib.update(posterior, key, self.log_target(params, x, y, mask),
                              **self._update_kwargs())

    def fit_posterior(self, params, key, x, y, mask, num_steps: int | None = None):
        """A fresh mixture fitted for num_steps (default num_test_steps) -> (GMM, final info)."""
        num_steps = self.num_test_steps if num_steps is None else num_steps
        posterior = params["posterior_init"]
        if num_steps == 0:
            return posterior, None
        posterior, infos = gmm_lib.fit(posterior, key, self.log_target(params, x, y, mask),
                                       num_steps, **self._update_kwargs())
        return posterior, jax.tree.map(lambda a: a[-1], infos)

    def sample(self, params, key, x, y, mask, num_particles: int, sampler=None) -> SamplerOutput:
        """Fits the task's mixture, then weighted particles z ~ q, log w = log gamma - log q.

        x [N, d_x], y [N, d_y], mask [N] -> SamplerOutput(z [P, d_z], log_w [P], aux).
        The signature is `NeuralProcess.sample`'s so evaluation and plotting reuse their code.
        """
        if sampler is not None:
            raise ValueError("GMM-NP has no sampler to override")
        key_fit, key_sample = jax.random.split(key)
        posterior, info = self.fit_posterior(params, key_fit, x, y, mask)
        z = gmm_lib.sample(posterior, key_sample, num_particles)
        log_target = self.log_target(params, x, y, mask)
        log_w = jax.vmap(lambda zz: log_target(zz) - gmm_lib.log_prob(posterior, zz))(z)
        aux = {} if info is None else dict(fit_elbo=info.elbo, fit_kl=jnp.mean(info.kl))
        return SamplerOutput(z, log_w, aux)


def from_config(config, dim_y: int = 1) -> GMMNeuralProcess:
    """The GMM-NP of `config.model` (decoder, dim_z) and `config.gmm`."""
    m, g = config.model, config.gmm
    return GMMNeuralProcess(
        decoder=networks.Decoder(dim_y=dim_y, hidden=tuple(m.decoder_hidden),
                                 activation=m.activation, learn_std=m.learn_std_y,
                                 std_y=m.std_y, std_y_min=m.std_y_min),
        dim_z=m.dim_z, num_components=g.num_components, prior_components=g.prior_components,
        prior_scale=g.prior_scale, num_samples_per_component=g.num_samples_per_component,
        kl_bound=g.kl_bound, weight_step_size=g.weight_step_size, eta_max=g.eta_max,
        num_bisection=g.num_bisection, num_test_steps=g.num_test_steps)


def validate_config(config) -> None:
    """Raises ValueError naming the first impossible field of `config.gmm`."""
    g = config.gmm

    def fail(field, why):
        raise ValueError(f"config.gmm.{field}={g[field]!r}: {why}")

    for f in ("num_components", "num_samples_per_component", "num_decoder_samples",
              "num_bisection", "batch_size"):
        if not isinstance(g[f], int) or g[f] < 1:
            fail(f, "must be an integer >= 1")
    for f in ("num_test_steps", "num_context_sets", "prior_components", "validate_every"):
        if not isinstance(g[f], int) or g[f] < 0:
            fail(f, "must be an integer >= 0")
    for f in ("kl_bound", "prior_scale", "weight_step_size"):
        if not g[f] > 0:
            fail(f, "must be > 0")
    if not g.eta_max > 1:
        fail("eta_max", "must be > 1 (eta = 1 is the full natural-gradient step)")
    if g.prior_components not in (0, g.num_components):
        fail("prior_components", f"must be 0 (N(0, I)) or num_components={g.num_components}")


# ------------------------------------------------------------------------------------------
# Meta-training


class TrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: dict  # {"decoder", "prior", "posterior_init"}
    opt_state: optax.OptState  # of params["decoder"] only
    posteriors: gmm_lib.GMM  # [M, K, ...]: one mixture per meta-training (task, context set)
    bad_step: jax.Array  # int32 []: first step with a non-finite loss or update, else -1


def context_set_masks(key, num_tasks: int, num_points: int, num_sets: int) -> jax.Array:
    """The fixed meta-training context sets -> float32 [T, S, N] (S = 1 and all ones if 0).

    Sizes cycle through the distinct values of linspace(1, N, S) (each size equally often, as
    the reference's SubtaskGenerator); the points of every (task, set) are uniformly random.
    """
    if num_sets == 0:
        return jnp.ones((num_tasks, 1, num_points), jnp.float32)
    sizes = np.unique(np.linspace(1, num_points, num_sets).astype(np.int32))
    sizes = jnp.asarray(np.resize(sizes, num_sets))
    noise = jax.random.uniform(key, (num_tasks, num_sets, num_points))
    ranks = jnp.argsort(jnp.argsort(noise, axis=-1), axis=-1)
    return (ranks < sizes[None, :, None]).astype(jnp.float32)


def make_optimizer(config) -> optax.GradientTransformation:
    """Plain Adam on the decoder, as the reference (no clipping: Adam's scale-free step)."""
    return optax.adam(config.train.learning_rate)


def init_state(model, optimizer, key, dim_x: int, num_subtasks: int) -> TrainState:
    params = model.init(key, dim_x, model.decoder.dim_y)
    posteriors = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_subtasks, *a.shape)),
                              params["posterior_init"])
    return TrainState(jnp.zeros((), jnp.int32), params, optimizer.init(params["decoder"]),
                      posteriors, jnp.full((), -1, jnp.int32))


def _all_finite(tree) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree.leaves(tree)]))


def make_train_step(model: GMMNeuralProcess, optimizer, config):
    """Jitted (state, base_key, x [T, N, d_x], y [T, N, d_y], masks [T, S, N]) -> (state, m).

    The minibatch of B subtasks is the step's slice of a per-epoch permutation of all T * S
    subtasks (drawn from the epoch number), so a resumed run repeats exactly. A non-finite
    loss, gradient or mixture leaves the state untouched and records the step in `bad_step`.
    """
    batch_size = config.gmm.batch_size
    num_dec = config.gmm.num_decoder_samples

    def step_fn(state: TrainState, base_key, x, y, masks):
        num_tasks, num_sets = masks.shape[:2]
        num_subtasks = num_tasks * num_sets
        batches_per_epoch = num_subtasks // batch_size  # drop the remainder, as the reference
        key_perm, key_steps = jax.random.split(base_key)
        epoch, pos = state.step // batches_per_epoch, state.step % batches_per_epoch
        perm = jax.random.permutation(jax.random.fold_in(key_perm, epoch), num_subtasks)
        idx = jax.lax.dynamic_slice(perm, (pos * batch_size,), (batch_size,))
        task, sub = idx // num_sets, idx % num_sets
        xb, yb, mb = x[task], y[task], masks[task, sub]
        post = jax.tree.map(lambda a: a[idx], state.posteriors)
        key_dec, key_post = jax.random.split(jax.random.fold_in(key_steps, state.step))

        def loss_fn(decoder_params):
            params = dict(state.params, decoder=decoder_params)

            def one(k, q, xi, yi, mi):
                z = jax.lax.stop_gradient(gmm_lib.sample(q, k, num_dec))
                ll = jax.vmap(lambda zz: model.log_likelihood(params, xi, yi, mi, zz))(z)
                rest = jax.vmap(lambda zz: model.log_prior(params, zz)
                                - gmm_lib.log_prob(q, zz))(z)
                return jnp.mean(ll + rest), jnp.mean(ll)

            keys = jax.random.split(key_dec, batch_size)
            elbo, ll = jax.vmap(one)(keys, post, xb, yb, mb)
            return -jnp.mean(elbo), jnp.mean(ll)

        (loss, ll), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params["decoder"])
        grad_norm = optax.global_norm(grads)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params["decoder"])
        params = dict(state.params, decoder=optax.apply_updates(state.params["decoder"], updates))

        keys = jax.random.split(key_post, batch_size)
        new_post, info = jax.vmap(
            lambda k, q, xi, yi, mi: model.update_posterior(params, k, q, xi, yi, mi))(
                keys, post, xb, yb, mb)
        posteriors = jax.tree.map(lambda a, n: a.at[idx].set(n), state.posteriors, new_post)

        ok = (jnp.isfinite(loss) & jnp.isfinite(grad_norm) & _all_finite(new_post)
              & (state.bad_step < 0))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        new_state = TrainState(
            step=state.step + 1,
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            posteriors=keep(posteriors, state.posteriors),
            bad_step=jnp.where(ok | (state.bad_step >= 0), state.bad_step, state.step),
        )
        metrics = dict(loss=loss, elbo=-loss, nll=-ll, grad_norm=grad_norm,
                       posterior_elbo=jnp.mean(info.elbo), kl=jnp.mean(info.kl),
                       accepted=jnp.mean(info.accepted.astype(jnp.float32)),
                       log_eta=jnp.mean(jnp.log(info.eta)))
        return new_state, metrics

    return jax.jit(step_fn, donate_argnums=0)


class Run(NamedTuple):
    model: GMMNeuralProcess
    state: TrainState
    dataset: object  # data.MetaDataset
    checkpoints: checkpoint.Checkpoints


def train(config, workdir: str, stop_after: int | None = None) -> Run:
    """Meta-trains (or resumes) the GMM-NP in `workdir`; `stop_after` simulates a preemption."""
    configuration.validate(config)
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    dataset = train_lib.load_data(config)
    x_train = jnp.asarray(dataset.meta_train.x)
    y_train = jnp.asarray(dataset.meta_train.y)
    num_tasks, num_points, dim_x = x_train.shape
    model = from_config(config, y_train.shape[-1])
    optimizer = make_optimizer(config)
    key_init, key_train, key_val, key_sets = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    masks = context_set_masks(key_sets, num_tasks, num_points, config.gmm.num_context_sets)
    if config.gmm.batch_size > masks.shape[0] * masks.shape[1]:
        raise ValueError(f"config.gmm.batch_size={config.gmm.batch_size!r}: exceeds the "
                         f"{masks.shape[0] * masks.shape[1]} meta-training posteriors "
                         "(data.num_tasks x gmm.num_context_sets)")
    state = init_state(model, optimizer, key_init, dim_x, masks.shape[0] * masks.shape[1])

    ckpts = checkpoint.Checkpoints(workdir)
    state, _ = train_lib.resume(ckpts, state, workdir)
    train_lib.write_json(os.path.join(workdir, "config.json"),
                         json.loads(config.to_json_best_effort()))
    logging.info("GMM-NP: %d posteriors (%d tasks x %d context sets), K = %d, d_z = %d",
                 masks.shape[0] * masks.shape[1], num_tasks, masks.shape[1],
                 model.num_components, model.dim_z)
    train_step = make_train_step(model, optimizer, config)
    # Validation fits fresh mixtures to every validation task and context size, which costs
    # about as much as the test evaluation; the reference trains for a fixed budget instead.
    val_metrics = fixed_width_metrics(
        evaluate.make_batch_metrics(model, config.eval.validation_particles),
        _context_width(config.eval.context_sizes, dataset.validation.x.shape[1]))
    state = train_lib.run_loop(
        config, workdir, state, ckpts,
        lambda state, step: train_step(state, key_train, x_train, y_train, masks), model,
        dataset.validation, val_metrics, key_val, validate_every=config.gmm.validate_every,
        stop_after=stop_after, log_keys=("loss", "elbo", "kl"))
    return Run(model, state, dataset, ckpts)


def restore_model(workdir: str, dim_x: int, dim_y: int, num_train_tasks: int):
    """(model, params) of the best (else last) checkpoint of a GMM-NP run."""
    config = train_lib.read_config(workdir)
    model = from_config(config, dim_y)
    num_subtasks = num_train_tasks * max(1, config.gmm.num_context_sets)
    template = init_state(model, make_optimizer(config), jax.random.PRNGKey(0), dim_x,
                          num_subtasks)
    return model, checkpoint.restore_params_from(workdir, template).params


# ------------------------------------------------------------------------------------------
# Evaluation


def fixed_width_metrics(batch_metrics, width: int):
    """`batch_metrics` with the context mask zero-padded to `width` points: one compilation.

    `evaluate` gives the target only the first context_bucket(n) points, one compilation per
    bucket; each compiles the whole test-time fit (about as long as fitting 64 tasks), so for
    GMM-NP one wider compilation is cheaper. Padded points have mask 0: same log gamma.
    """
    def call(params, key, x, y, mask):
        return batch_metrics(params, key, x, y, jnp.pad(mask, (0, width - mask.shape[0])))

    return call


def _context_width(context_sizes, num_points: int) -> int:
    return evaluate.context_bucket(max(context_sizes), num_points)


def final_evaluation(config, workdir: str, run: Run) -> dict:
    """Test split with the best checkpoint (the last state without validation): fresh mixtures.

    Writes eval.json (the format of `train.final_evaluation`, plus the test-time cost, which
    here includes fitting the mixtures) and predictions.png.
    """
    state = run.checkpoints.restore_best(run.state) or run.state
    key = jax.random.fold_in(jax.random.PRNGKey(config.seed), 10**6)
    test = run.dataset.test
    task_chunk = min(config.eval.task_chunk, test.x.shape[0])
    batch_metrics = fixed_width_metrics(
        evaluate.make_batch_metrics(run.model, config.eval.num_particles),
        _context_width(config.eval.context_sizes, test.x.shape[1]))
    summary = evaluate.evaluate(run.model, state.params, key, test, config.eval.context_sizes,
                                config.eval.num_particles, task_chunk,
                                batch_metrics=batch_metrics)
    # The amortized models' measurement (one task alone, and the whole split in chunks);
    # here `sample` fits the fresh mixture first, so the fit is part of the cost.
    summary["test_time"] = evaluate.measure_test_time(
        run.model, state.params, key, test, max(config.eval.context_sizes),
        config.eval.num_particles, task_chunk)
    summary.update(
        checkpoint_step=int(state.step),
        benchmark=run.dataset.name,
        sampler="gmm",
        method="gmm",
        num_components=run.model.num_components,
        num_test_steps=run.model.num_test_steps,
    )
    train_lib.write_json(os.path.join(workdir, "eval.json"), summary)
    num_plot = min(config.eval.plot_tasks, test.x.shape[0])
    if num_plot:
        plotting.plot_predictions(run.model, state.params, jax.random.fold_in(key, 1), test,
                                  tuple(config.eval.plot_context_sizes), num_plot,
                                  os.path.join(workdir, "predictions.png"))
    return summary


def train_and_evaluate(config, workdir: str) -> dict:
    """The whole GMM-NP experiment: meta-train (resuming if possible), then evaluate."""
    return train_lib.train_and_evaluate(config, workdir, train, final_evaluation)
