"""Impossible configs are rejected before any work, and the message names the field."""

import pytest

from amvi_jax import configuration, encoders, methods, samplers
from amvi_jax.training import objectives
from configs import default, gmm


@pytest.mark.parametrize("field, value, match", [
    ("train.num_steps", 0, "config.train.num_steps"),
    ("train.num_particles", -1, "config.train.num_particles"),
    ("train.batch_size", 0, "config.train.batch_size"),
    ("train.learning_rate", -1e-3, "config.train.learning_rate"),
    ("model.std_y_min", 0.0, "config.model.std_y_min"),
    ("model.dim_z", 0, "config.model.dim_z"),
    ("model.encoder_hidden", (), "config.model.encoder_hidden"),
    ("data.benchmark", "sinusoid", "valid names: sinusoid1d"),
    ("data.benchmark", "missing.npz", "no such .npz file"),
    ("eval.num_particles", 0, "config.eval.num_particles"),
    ("eval.context_sizes", (0, 100), "config.eval.context_sizes"),
    ("train.pretrain_steps", 10**9, "config.train.pretrain_steps"),
    ("train.init_from", "/no/such/run", "config.train.init_from"),
    ("train.lr_schedule", "linear", "valid: constant, cosine"),
    ("train.lr_final_fraction", 1.5, "config.train.lr_final_fraction"),
    ("eval.literature_points", 5, "config.eval.literature_points"),
    ("eval.refine_moves", -1, "config.eval.refine_moves"),
])
def test_bad_values_are_rejected_naming_the_field(field, value, match):
    config = default.get_config()
    section, name = field.split(".")
    config[section][name] = value
    with pytest.raises(ValueError, match=match):
        configuration.validate(config)


@pytest.mark.parametrize("field, value, registry", [
    ("method", "maml", methods.REGISTRY),
    ("model.aggregation", "max", encoders.REGISTRY),
    ("sampler.name", "hmc", samplers.REGISTRY),
    ("train.objective", "iwae", objectives.REGISTRY),
])
def test_unknown_names_list_the_registered_ones(field, value, registry):
    config = default.get_config()
    *section, name = field.split(".")
    (config[section[0]] if section else config)[name] = value
    with pytest.raises(ValueError) as err:
        configuration.validate(config)
    message = str(err.value)
    assert f"config.{field}={value!r}" in message
    assert f"valid names: {', '.join(registry)}" in message


@pytest.mark.parametrize("field", ["refine_temperatures", "refine_moves"])
def test_gmm_np_rejects_the_amortized_test_time_dials(field):
    config = gmm.get_config()
    config.eval[field] = 8
    with pytest.raises(ValueError, match=f"config.eval.{field}=8: .*per-task fit"):
        configuration.validate(config)


def test_gmm_section_is_checked_for_gmm_runs_only():
    config = gmm.get_config()
    config.gmm.kl_bound = 0.0
    with pytest.raises(ValueError, match="config.gmm.kl_bound=0.0"):
        configuration.validate(config)
    config = default.get_config()
    config.method = "gmm"  # no gmm section at all
    with pytest.raises(ValueError, match="needs a `gmm` section"):
        configuration.validate(config)


def test_every_shipped_config_is_valid():
    import importlib
    import pkgutil

    import configs

    names = [m.name for m in pkgutil.iter_modules(configs.__path__) if m.name != "presets"]
    assert set(samplers.DIFFUSIONS) <= set(names)  # every diffusion ships a config
    for name in names:
        configuration.validate(importlib.import_module(f"configs.{name}").get_config())


def test_cosine_schedule_decays_each_stage_and_constant_is_unchanged():
    import jax.numpy as jnp

    from amvi_jax.methods.amortized_step import make_optimizer

    def rates(config, steps):
        # Adam's first update is -rate * sign(g) for any gradient: it reads the rate off.
        opt = make_optimizer(config)
        params = {"w": jnp.zeros(())}
        state, out = opt.init(params), []
        for _ in range(steps):
            update, state = opt.update({"w": jnp.ones(())}, state, params)
            out.append(-float(update["w"]))
        return out

    config = default.get_config()
    config.train.update(dict(num_steps=4, lr_schedule="cosine", lr_final_fraction=0.1))
    got = rates(config, 5)
    assert got[0] == pytest.approx(1e-3, rel=1e-3)
    assert got[2] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5), rel=1e-3)  # half-way
    assert got[4] == pytest.approx(1e-4, rel=1e-3)  # the floor after the stage
    # A diffusion after 2 pre-training steps: the Gaussian stage decays over its 2 steps, the
    # diffusion rate over the 2 after them.
    config.sampler.name, config.train.pretrain_steps = "ula", 2
    config.train.diffusion_learning_rate = 3e-4
    got = rates(config, 4)
    assert got[0] == pytest.approx(1e-3, rel=1e-3)
    assert got[1] == pytest.approx(1e-3 * 0.55, rel=1e-3)
    assert got[2] == pytest.approx(3e-4, rel=1e-3)
    assert got[3] == pytest.approx(3e-4 * 0.55, rel=1e-3)
    config.train.lr_schedule = "constant"
    assert rates(config, 3) == pytest.approx([1e-3, 1e-3, 3e-4], rel=1e-3)


def test_an_npz_file_bounds_the_context_sizes_by_its_own_test_points(tmp_path):
    """data.num_test_points does not describe a .npz file: its sizes are checked against the
    file's test tasks once read, not against the default 64."""
    import numpy as np

    from amvi_jax import workdir

    rng = np.random.default_rng(0)
    path = str(tmp_path / "tasks.npz")
    np.savez(path, x=rng.normal(size=(8, 10, 1)), y=rng.normal(size=(8, 10, 1)),
             x_test=rng.normal(size=(4, 100, 1)), y_test=rng.normal(size=(4, 100, 1)))
    config = default.get_config()
    config.data.benchmark = path
    config.eval.context_sizes = (0, 100)  # > data.num_test_points = 64, <= the file's 100
    configuration.validate(config)
    dataset = workdir.load_data(config)
    configuration.validate_against_data(config, dataset)
    config.eval.context_sizes = (0, 101)
    with pytest.raises(ValueError, match=r"config.eval.context_sizes.*test tasks' points=100"):
        configuration.validate_against_data(config, dataset)
    config.eval.context_sizes = (0, 8)
    config.model.grid_shape = (28, 28)
    with pytest.raises(ValueError, match="config.model.grid_shape.*not an image benchmark"):
        configuration.validate_against_data(config, dataset)
