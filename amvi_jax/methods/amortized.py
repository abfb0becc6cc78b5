"""The amortized method: an encoder and a sampler shared by all tasks (docs/DESIGN.md 1-4).

Diffusions warm-start from the Gaussian neural process: either within the run (the first
`train.pretrain_steps` steps train with the K = 0 sampler, then the diffusion takes over) or
from another run's best checkpoint (`train.init_from`: its encoder, decoder and, if compatible,
sampler). Validation scores the model's own sampler, so it starts with the diffusion stage.
"""

import os

import jax
from absl import logging

from amvi_jax import (
    checkpoint,
    checks,
    encoders,
    evaluate,
    neural_process,
    reference,
    samplers,
    sharding,
)
from amvi_jax import model as model_lib
from amvi_jax import workdir as workdir_lib
from amvi_jax.methods import amortized_step as step_lib
from amvi_jax.methods.base import Evaluation, Method, Setup
from amvi_jax.samplers import refine
from amvi_jax.training import objectives
from amvi_jax.training import state as state_lib
from amvi_jax.training.loop import Validation


def validate(config) -> None:
    """Raises ValueError naming the first impossible field of an amortized config."""
    encoders.REGISTRY.check(config.model.aggregation, "model.aggregation")
    covariance = config.model.q0_covariance
    if covariance not in encoders.Q0_COVARIANCES:
        checks.fail("model.q0_covariance", covariance,
                    f"unknown; valid: {', '.join(encoders.Q0_COVARIANCES)}")
    num_components = config.model.q0_components
    if num_components != 1:
        checks.positive_int(config, "model.q0_components")
    for f in ("train.num_particles", "eval.num_particles", "eval.validation_particles"):
        if checks.get(config, f) % num_components:
            checks.fail(f, checks.get(config, f),
                        f"must be a multiple of model.q0_components={num_components} "
                        "(each mixture component draws as many particles)")
    if num_components > 1 and config.eval.refine_temperatures:
        checks.fail("eval.refine_temperatures", config.eval.refine_temperatures,
                    "the test-time dial starts from a Gaussian q0; needs model.q0_components=1")
    checks.widths(config, "model.encoder_hidden")
    encoders.from_config(config.model)  # raises, naming the encoder option
    samplers.REGISTRY.check(config.sampler.name, "sampler.name")
    if config.sampler.name in samplers.TEST_TIME:
        checks.fail("sampler.name", config.sampler.name,
                    "is a test-time sampler with nothing to learn; train with one of "
                    f"{', '.join(samplers.TRAINABLE)} and evaluate with "
                    "eval.refine_temperatures > 0")
    samplers.from_config(config.sampler)  # raises, naming the sampler option
    objectives.REGISTRY.check(config.train.objective, "train.objective")
    if config.train.proposal_objective:
        objectives.REGISTRY.check(config.train.proposal_objective, "train.proposal_objective")
    checks.positive_int(config, "train.min_context_size", allow_zero=True)
    if config.train.min_context_size > config.data.num_points:
        checks.fail("train.min_context_size", config.train.min_context_size,
                    f"must be <= data.num_points={config.data.num_points}")
    for f in ("train.batch_size", "train.num_subsets", "train.num_particles"):
        checks.positive_int(config, f)
    checks.positive_int(config, "train.pretrain_steps", allow_zero=True)
    if config.train.pretrain_steps > config.train.num_steps:
        checks.fail("train.pretrain_steps", config.train.pretrain_steps,
                    f"must be <= train.num_steps={config.train.num_steps}")
    checks.positive(config, "train.diffusion_learning_rate")
    checks.positive_int(config, "eval.refine_moves", allow_zero=True)
    if config.eval.refine_temperatures:
        checks.positive_int(config, "eval.refine_temperatures")
        checks.positive_int(config, "eval.refine_pilots")
    if config.eval.refine_temperatures or config.eval.refine_moves:
        if config.eval.refine_transition not in reference.TRANSITIONS:
            checks.fail("eval.refine_transition", config.eval.refine_transition,
                        f"unknown; valid: {', '.join(reference.TRANSITIONS)}")
    checks.positive(config, "train.grad_clip_norm")
    if config.train.init_from and not os.path.isdir(config.train.init_from):
        checks.fail("train.init_from", config.train.init_from, "no such run directory")
    if (config.train.batch_size > config.data.num_tasks
            and not config.data.benchmark.endswith(".npz")):
        checks.fail("train.batch_size", config.train.batch_size,
                    f"exceeds data.num_tasks={config.data.num_tasks}")


def _init_state(config, model, key, dim_x: int, dim_y: int) -> state_lib.TrainState:
    params = model.init(key, dim_x, dim_y)
    return state_lib.create(params, step_lib.make_optimizer(config).init(params))


def _warm_start(config, model, state, dim_x: int, dim_y: int) -> state_lib.TrainState:
    """Encoder and decoder (and a compatible sampler) from another run's best checkpoint."""
    src = config.train.init_from
    src_config = workdir_lib.read_config(src)
    if src_config.method != "amortized":
        checks.fail("train.init_from", src, f"holds a {src_config.method!r} run; warm starts "
                    "take the encoder and decoder of an amortized run")
    src_model = neural_process.from_config(src_config, dim_y)
    src_params, _ = checkpoint.restore_params_from(
        src, model_lib.param_shapes(src_model, dim_x, dim_y))
    for part in ("encoder", "decoder"):
        if jax.tree.structure(src_params[part]) != jax.tree.structure(state.params[part]):
            checks.fail("train.init_from", src, f"its {part} does not match this config's "
                        f"(encoder {src_config.model.aggregation!r} there, "
                        f"{config.model.aggregation!r} here; compare the model sections)")
    params = dict(state.params, encoder=src_params["encoder"], decoder=src_params["decoder"])
    same = jax.tree.structure(src_params["sampler"]) == jax.tree.structure(params["sampler"])
    if same:
        params["sampler"] = src_params["sampler"]
    logging.info("warm start from %s (encoder, decoder%s)", src, ", sampler" if same else "")
    return state._replace(params=params, opt_state=step_lib.make_optimizer(config).init(params))


def setup(config, dataset, mesh=None) -> Setup:
    """Model, fresh state, jitted step(s) and validation of an amortized config."""
    if config.sampler.name == "gaussian" and not config.train.diffusion_trains_decoder:
        logging.warning("a Gaussian run has no diffusion stage: "
                        "train.diffusion_trains_decoder=False is not used")
    dim_x, dim_y = dataset.meta_train.x.shape[-1], dataset.meta_train.y.shape[-1]
    model = neural_process.from_config(config, dim_y)
    key_init, key_train, key_val = jax.random.split(jax.random.PRNGKey(config.seed), 3)
    state = _init_state(config, model, key_init, dim_x, dim_y)
    optimizer = step_lib.make_optimizer(config)
    tc = config.train
    # On the device once: numpy arrays would be copied into every step, O(T) each time.
    train_data = jax.device_put((dataset.meta_train.x, dataset.meta_train.y),
                                None if mesh is None else sharding.replicated(mesh))
    diffusion_step = step_lib.make_train_step(model, optimizer, config, mesh)
    pretraining = tc.pretrain_steps > 0 and model.sampler.name != "gaussian"
    pretrain_step = (step_lib.make_train_step(model.with_sampler(samplers.get("gaussian")),
                                              optimizer, config, mesh) if pretraining else None)

    def warming_up(step_index: int) -> bool:  # the Gaussian stage of an in-run warm start
        return pretraining and step_index < tc.pretrain_steps

    def step(state, step_index: int):
        use = pretrain_step if warming_up(step_index) else diffusion_step
        return use(state, key_train, *train_data)

    fused_diffusion = step_lib.make_train_steps(model, optimizer, config, mesh)
    fused_pretrain = (step_lib.make_train_steps(model.with_sampler(samplers.get("gaussian")),
                                                optimizer, config, mesh) if pretraining else None)

    def steps(state, first: int, num_steps: int):
        def run(state, start, n):
            use = fused_pretrain if warming_up(start) else fused_diffusion
            return use(state, key_train, *train_data, num_steps=n)

        # The warm start's last step is a boundary: the sampler changes there.
        end = lambda start: tc.pretrain_steps if start < tc.pretrain_steps else 2**62
        return state_lib.in_segments(run, state, first, num_steps, end)

    validation = Validation(
        model=model, tasks=dataset.validation, key=key_val, every=tc.validate_every,
        after=tc.pretrain_steps, at_start=tc.validate_at_start,
        batch_metrics=evaluate.make_batch_metrics(model, config.eval.validation_particles,
                                                  mesh=mesh))
    return Setup(
        model=model, state=state, step=step, steps=steps, validation=validation,
        evaluation=_evaluation(config, model),
        warm_start=((lambda s: _warm_start(config, model, s, dim_x, dim_y))
                    if tc.init_from else None))


def _evaluation(config, model: neural_process.NeuralProcess) -> Evaluation:
    """The trained model, evaluated with its own sampler or, with eval.refine_temperatures,
    the AIS test-time sampler from its q0; with eval.refine_moves, either one's particles then
    resampled and moved (`samplers.refine`)."""
    temperatures, moves = config.eval.refine_temperatures, config.eval.refine_moves
    evaluation_model = model.with_sampler(refine.dialled(
        model.sampler, temperatures, moves, config.eval.refine_transition,
        config.eval.refine_pilots))
    diffusion = model.sampler.name != "gaussian"
    return Evaluation(
        model=evaluation_model, trained=model,
        describe=dict(sampler=model.sampler.name, encoder=config.model.aggregation,
                      refine_temperatures=temperatures, refine_moves=moves),
        schedules=model.schedules if diffusion else None)


def evaluation(config, dataset) -> Evaluation:
    """What evaluating a finished run needs: the model from the config, nothing trained."""
    return _evaluation(config, neural_process.from_config(config,
                                                          dataset.meta_train.y.shape[-1]))


METHOD = Method(validate=validate, setup=setup, evaluation=evaluation)
