"""GMM-NP (Volpp et al., ICLR 2023): a non-amortized Gaussian-mixture posterior per task.

The competing approach of docs/DESIGN.md section 7. The decoder is shared by all tasks as in
the rest of the library; the task posterior is NOT amortized: every meta-training context set
keeps its own full-covariance K-component mixture, fitted by trust-region natural-gradient
(MORE) updates (`amvi_jax.gmm`), and every new test task gets a fresh mixture fitted from
scratch.

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

`GMMNeuralProcess` implements `model.Model`, so evaluation, plots and the AIS reference run on
it as they do on the amortized model; the train state is the shared `TrainState` with the
meta-training mixtures in its `extra` field.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from amvi_jax import checks, evaluate, networks
from amvi_jax import gmm as gmm_lib
from amvi_jax import model as model_lib
from amvi_jax.methods.base import Evaluation, Method, Setup
from amvi_jax.model import DecoderModel, decoder_from_config
from amvi_jax.training import state as state_lib
from amvi_jax.training.loop import Validation
from amvi_jax.types import SamplerOutput, Schedules


@dataclasses.dataclass(frozen=True)
class GMMNeuralProcess(DecoderModel):
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

    def log_prior(self, params, z) -> jax.Array:
        """log p(z): z [d_z] -> scalar (N(0, I) or Volpp's fixed GMM prior)."""
        return gmm_lib.log_prob(params["prior"], z)

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

    def sample(self, params, key, x, y, mask, num_particles: int) -> SamplerOutput:
        """Fits the task's mixture, then weighted particles z ~ q, log w = log gamma - log q.

        x [N, d_x], y [N, d_y], mask [N] -> SamplerOutput(z [P, d_z], log_w [P], Schedules()).
        """
        key_fit, key_sample = jax.random.split(key)
        posterior, _ = self.fit_posterior(params, key_fit, x, y, mask)
        z = gmm_lib.sample(posterior, key_sample, num_particles)
        log_target = self.log_target(params, x, y, mask)
        log_w = jax.vmap(lambda zz: log_target(zz) - gmm_lib.log_prob(posterior, zz))(z)
        return SamplerOutput(z, log_w, Schedules())


def from_config(config, dim_y: int) -> GMMNeuralProcess:
    """The GMM-NP of `config.model` (decoder, dim_z) and `config.gmm`."""
    m, g = config.model, config.gmm
    return GMMNeuralProcess(
        decoder=decoder_from_config(m, dim_y),
        dim_z=m.dim_z, num_components=g.num_components, prior_components=g.prior_components,
        prior_scale=g.prior_scale, num_samples_per_component=g.num_samples_per_component,
        kl_bound=g.kl_bound, weight_step_size=g.weight_step_size, eta_max=g.eta_max,
        num_bisection=g.num_bisection, num_test_steps=g.num_test_steps)


def validate(config) -> None:
    """Raises ValueError naming the first impossible field of `config.gmm`."""
    if "gmm" not in config:
        checks.fail("method", config.method, "needs a `gmm` section (see configs/gmm.py)")
    g = config.gmm
    for f in ("num_components", "num_samples_per_component", "num_decoder_samples",
              "num_bisection", "batch_size"):
        checks.positive_int(config, f"gmm.{f}")
    for f in ("num_test_steps", "num_context_sets", "prior_components", "validate_every"):
        checks.positive_int(config, f"gmm.{f}", allow_zero=True)
    for f in ("kl_bound", "prior_scale", "weight_step_size"):
        checks.positive(config, f"gmm.{f}")
    if not g.eta_max > 1:
        checks.fail("gmm.eta_max", g.eta_max,
                    "must be > 1 (eta = 1 is the full natural-gradient step)")
    if g.prior_components not in (0, g.num_components):
        checks.fail("gmm.prior_components", g.prior_components,
                    f"must be 0 (N(0, I)) or num_components={g.num_components}")
    for f in ("eval.refine_temperatures", "eval.refine_moves"):
        if checks.get(config, f):
            checks.fail(f, checks.get(config, f),
                        "is a test-time dial of the amortized samplers; GMM-NP's test-time "
                        "computation is its own per-task fit (gmm.num_test_steps)")


# ------------------------------------------------------------------------------------------
# Meta-training


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


def init_state(model, optimizer, key, dim_x: int, num_subtasks: int) -> state_lib.TrainState:
    """Step 0: params, Adam state of the decoder, and in `extra` the M = num_subtasks
    meta-training mixtures GMM [M, K, ...], all at the initial posterior."""
    params = model.init(key, dim_x, model.decoder.dim_y)
    posteriors = jax.tree.map(lambda a: jnp.broadcast_to(a, (num_subtasks, *a.shape)),
                              params["posterior_init"])
    return state_lib.create(params, optimizer.init(params["decoder"]), posteriors)


def epoch_order(base_key: jax.Array, epoch, num_subtasks: int) -> jax.Array:
    """int32 [M]: the order in which epoch `epoch` visits the M subtasks."""
    key_perm = jax.random.split(base_key)[0]
    return jax.random.permutation(jax.random.fold_in(key_perm, epoch), num_subtasks)


class EpochOrders:
    """`epoch_order` of the epoch a step index falls in, drawn once per epoch on first use.

    Drawing it inside the step costs O(M log M) at every step (240 ms of a 256 ms step at
    T = 16384 x 32 sets on a 2-core CPU); it depends only on the key and the epoch, so a resumed
    run draws the same one and the checkpoint need not hold it.
    """

    def __init__(self, base_key: jax.Array, num_subtasks: int, batch_size: int):
        self.batches_per_epoch = num_subtasks // batch_size  # the remainder is dropped
        self.draw = jax.jit(lambda epoch: epoch_order(base_key, epoch, num_subtasks))
        self.epoch, self.order = None, None

    def __call__(self, step: int) -> jax.Array:
        epoch = step // self.batches_per_epoch
        if epoch != self.epoch:
            self.epoch, self.order = epoch, self.draw(epoch)
        return self.order


def make_train_step(model: GMMNeuralProcess, optimizer, config):
    """`train_step_fn` jitted, the state donated."""
    return jax.jit(train_step_fn(model, optimizer, config), donate_argnums=0)


def train_step_fn(model: GMMNeuralProcess, optimizer, config):
    """Un-jitted (state, base_key, x [T, N, d_x], y [T, N, d_y], masks [T, S, N], order [T * S])
    -> (state, metrics); `order` is `EpochOrders(base_key, T * S, B)(int(state.step))`.

    The minibatch of B subtasks is the step's slice of a per-epoch permutation of all T * S
    subtasks (drawn from the epoch number), so a resumed run repeats exactly. A non-finite loss,
    gradient or mixture leaves the state untouched (`state.guarded_update`). A step's work does
    not grow with T: it gathers and writes back only its B mixtures.
    """
    batch_size = config.gmm.batch_size
    num_dec = config.gmm.num_decoder_samples

    def step_fn(state: state_lib.TrainState, base_key, x, y, masks, order):
        num_sets = masks.shape[1]
        batches_per_epoch = order.shape[0] // batch_size  # drop the remainder, as the reference
        key_steps = jax.random.split(base_key)[1]
        pos = state.step % batches_per_epoch
        idx = jax.lax.dynamic_slice(order, (pos * batch_size,), (batch_size,))
        task, sub = idx // num_sets, idx % num_sets
        xb, yb, mb = x[task], y[task], masks[task, sub]
        post = jax.tree.map(lambda a: a[idx], state.extra)
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
        ok = state_lib.healthy(state, jnp.isfinite(loss) & jnp.isfinite(grad_norm)
                               & state_lib.all_finite(new_post))
        # The guard selects among the B rows only; the scatter then writes them in place (the
        # state is donated), where a select over all M mixtures would copy them every step.
        rows = jax.tree.map(lambda new, old: jnp.where(ok, new, old), new_post, post)
        posteriors = jax.tree.map(lambda a, r: a.at[idx].set(r), state.extra, rows)
        metrics = dict(loss=loss, elbo=-loss, nll=-ll, grad_norm=grad_norm,
                       posterior_elbo=jnp.mean(info.elbo), kl=jnp.mean(info.kl),
                       accepted=jnp.mean(info.accepted.astype(jnp.float32)),
                       log_eta=jnp.mean(jnp.log(info.eta)))
        return (state_lib.guarded_update(state, ok, params, opt_state)._replace(extra=posteriors),
                metrics)

    return step_fn


def setup(config, dataset, mesh=None) -> Setup:
    """Model, fresh state (with every meta-training mixture), jitted step and validation.

    GMM-NP runs on one device: `mesh` is ignored.
    """
    del mesh
    if config.train.objective != "elbo" or config.train.proposal_objective:
        logging.warning("GMM-NP trains its decoder on the ELBO under its fitted mixtures; "
                        "train.objective=%r and train.proposal_objective=%r are not used",
                        config.train.objective, config.train.proposal_objective)
    x_train = jnp.asarray(dataset.meta_train.x)
    y_train = jnp.asarray(dataset.meta_train.y)
    num_tasks, num_points, dim_x = x_train.shape
    model = from_config(config, y_train.shape[-1])
    optimizer = make_optimizer(config)
    key_init, key_train, key_val, key_sets = jax.random.split(jax.random.PRNGKey(config.seed), 4)
    masks = context_set_masks(key_sets, num_tasks, num_points, config.gmm.num_context_sets)
    num_subtasks = masks.shape[0] * masks.shape[1]
    if config.gmm.batch_size > num_subtasks:
        checks.fail("gmm.batch_size", config.gmm.batch_size,
                    f"exceeds the {num_subtasks} meta-training posteriors "
                    "(data.num_tasks x gmm.num_context_sets)")
    state = init_state(model, optimizer, key_init, dim_x, num_subtasks)
    logging.info("GMM-NP: %d posteriors (%d tasks x %d context sets), K = %d, d_z = %d",
                 num_subtasks, num_tasks, masks.shape[1], model.num_components, model.dim_z)
    train_step = make_train_step(model, optimizer, config)
    fused_steps = state_lib.fused(train_step_fn(model, optimizer, config))
    orders = EpochOrders(key_train, num_subtasks, config.gmm.batch_size)
    evaluation = _evaluation(config, dataset, model)
    # Validation fits fresh mixtures to every validation task and context size, about the cost
    # of the test evaluation; the reference trains for a fixed budget instead (validate_every 0).
    validation = Validation(
        model=model, tasks=dataset.validation, key=key_val, every=config.gmm.validate_every,
        batch_metrics=evaluate.make_batch_metrics(model, config.eval.validation_particles),
        context_width=evaluation.context_width, at_start=config.train.validate_at_start)
    return Setup(
        model=model, state=state,
        step=lambda state, step: train_step(state, key_train, x_train, y_train, masks,
                                            orders(step)),
        # An epoch's permutation is an argument of the step: a fused call stays in one epoch.
        steps=lambda state, first, n: state_lib.in_segments(
            lambda s, start, length: fused_steps(s, key_train, x_train, y_train, masks,
                                                 orders(start), num_steps=length),
            state, first, n,
            lambda start: (start // orders.batches_per_epoch + 1) * orders.batches_per_epoch),
        validation=validation, log_keys=("loss", "elbo", "kl"), evaluation=evaluation)


def _evaluation(config, dataset, model: GMMNeuralProcess) -> Evaluation:
    """Test-time fits of fresh mixtures under the trained decoder."""
    num_tasks, _, dim_x = dataset.meta_train.x.shape
    num_subtasks = num_tasks * max(config.gmm.num_context_sets, 1)  # as context_set_masks
    posterior = model_lib.param_shapes(model, dim_x, model.decoder.dim_y)["posterior_init"]
    return Evaluation(
        model=model, trained=model,
        # Every evaluation compiles the whole test-time fit, which costs about as much as
        # fitting 64 tasks: one context width (one compilation) is cheaper than one per bucket.
        context_width=evaluate.context_bucket(max(config.eval.context_sizes),
                                              dataset.test.x.shape[1]),
        describe=dict(sampler="gmm", num_components=model.num_components,
                      num_test_steps=model.num_test_steps,
                      # the meta-training mixtures: grows with data.num_tasks (x
                      # gmm.num_context_sets), the T sweep
                      posterior_state_bytes=num_subtasks * sum(
                          a.size * a.dtype.itemsize for a in jax.tree.leaves(posterior))))


def evaluation(config, dataset) -> Evaluation:
    """What evaluating a finished run needs: the model from the config, no mixtures."""
    return _evaluation(config, dataset, from_config(config, dataset.meta_train.y.shape[-1]))


METHOD = Method(validate=validate, setup=setup, evaluation=evaluation)
