"""Default configuration: the amortized Gaussian neural process (K = 0) on sinusoid1d.

Every other config is a small diff on this one. Override any field on the command line, e.g.
`--config.train.num_steps=1000 --config.data.benchmark=gp_rbf`.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.name = "default"
    config.method = "amortized"    # amvi_jax.methods.NAMES: "amortized" | "gmm" (GMM-NP)
    config.seed = 0
    config.num_devices = 0         # data-parallel devices for the task axis; 0 = all visible
    config.distributed = False     # multi-host: call jax.distributed.initialize() first

    # Volpp et al.'s meta-training split and test split (docs/DESIGN.md section 6).
    config.data = ml_collections.ConfigDict(dict(
        benchmark="sinusoid1d",    # a name from amvi_jax.data.BENCHMARKS or a path to tasks.npz
        num_tasks=64,
        num_points=16,
        num_test_points=64,
        num_validation_tasks=64,
        num_test_tasks=256,
        noise_std=0.25,
        seed_task=0,
        seed_x=1,
        seed_noise=2,
        data_dir="",               # empty: $AMVI_DATA_DIR or ~/.cache/amvi_jax/tfds
        holdout_fraction=0.25,     # .npz without test arrays: tasks held out for val + test
        image_size=0,              # "tfds:<name>" images: resized to this square; 0 = native
    ))

    config.model = ml_collections.ConfigDict(dict(
        # 4, chosen on validation tasks (docs/RESULTS.md section 10): 2 (Volpp et al.'s) cannot
        # hold quadratic1d's three task parameters, nor enough of a GP's function.
        dim_z=4,
        aggregation="bayesian",    # encoder, amvi_jax.encoders.NAMES: bayesian | mean | attention
        encoder_hidden=(64, 64),   # per-point MLP (attention: its last width is the model width)
        attention_heads=4,         # aggregation="attention" only
        attention_layers=2,        # aggregation="attention" only
        tie_prior=False,           # q0 of an empty context is the model prior N(0, I) exactly
        q0_covariance="diag",      # "full": a correlated q0 (lower-triangular scale)
        q0_components=1,           # M > 1: q0 is a mixture of M Gaussians (stratified draws)
        decoder_hidden=(64, 64),
        activation="gelu",
        learn_std_y=True,          # learned as std_y_min + softplus(.), initialised at std_y
        std_y=0.25,
        std_y_min=0.1,
        heteroscedastic_std=False,  # one std per point from the decoder (images), not shared
        x_frequencies=0,           # > 0: Fourier features of x for encoder and decoder (images)
        grid_shape=(),             # (H, W): images' decoder maps z to all pixels (GridDecoder)
    ))

    # "gaussian" (K = 0) or a diffusion from amvi_jax.samplers.NAMES with its options.
    config.sampler = ml_collections.ConfigDict(dict(name="gaussian", num_steps=0))

    config.train = ml_collections.ConfigDict(dict(
        num_steps=20_000,
        # The measured recipe (docs/RESULTS.md section 7): the importance-weighted bound over 16
        # particles. Until 2026-12 the default was elbo over 4 particles:
        # --config.train.objective=elbo --config.train.num_particles=4 runs it again.
        objective="iw",            # amvi_jax.training.objectives.NAMES (the decoder's)
        proposal_objective="",     # encoder and sampler: "" = the same as objective
        min_context_size=1,        # training context sizes min..N (0: also the empty context)
        batch_size=8,              # tasks per step
        num_subsets=4,             # random context subsets per task
        num_particles=16,          # particles per subset
        learning_rate=1e-3,
        lr_schedule="constant",    # "cosine": each stage's rate decays to lr_final_fraction x
        lr_final_fraction=0.0,     # cosine only: the rate at the stage's last step / its start
        diffusion_learning_rate=1e-3,  # Adam rate from step pretrain_steps on
        diffusion_trains_decoder=True,  # False: the diffusion stage leaves the decoder fixed
        grad_clip_norm=10.0,
        pretrain_steps=0,          # first steps with the Gaussian sampler (warm start)
        init_from="",              # workdir of another run: start from its best parameters
        log_every=500,
        validate_every=2_000,      # keep the best checkpoint by validation lmlhd
        validate_every_s=0.0,      # > 0: also every this many training seconds (any method)
        validate_at_start=True,    # the start (diffusion: its warm start) is a candidate too
        time_budget_s=0.0,         # > 0: stop (validate, save) at the first step past it
        checkpoint_every=2_000,
        # Training steps per compiled call (one lax.scan); calls end where the loop logs,
        # validates or saves, so those happen at the same steps whatever N (docs/PERFORMANCE.md).
        steps_per_call=1,
    ))

    config.eval = ml_collections.ConfigDict(dict(
        context_sizes=(0, 1, 2, 4, 6, 8, 12, 16),
        num_particles=1024,
        task_chunk=16,             # test tasks per jitted evaluation call (memory bound)
        validation_particles=128,
        plot_tasks=4,
        plot_context_sizes=(0, 2, 8),
        # Image benchmarks: also the NP literature's per-pixel protocol on this many points per
        # test image (contexts of 3..196, disjoint targets; docs/DESIGN.md); 0 = off.
        literature_points=200,
        # Test-time compute dial (off: 0): evaluate with Metropolis-corrected AIS from the
        # amortized q0 over this many temperatures instead of the learned sampler.
        refine_temperatures=0,
        refine_transition="mala",
        refine_pilots=256,
        # Second dial (off: 0): the sampler's weighted particles resampled, then moved this many
        # Metropolis-corrected steps at the posterior (amvi_jax.samplers.refine; with either).
        refine_moves=0,
    ))
    return config


def with_diffusion(config: ml_collections.ConfigDict, name: str,
                   num_steps: int = 8) -> ml_collections.ConfigDict:
    """Turns `config` into a diffusion run: sampler `name` with K = num_steps and its defaults.

    Warm start (docs/DESIGN.md section 4): the first `train.pretrain_steps` steps train the
    Gaussian neural process (K = 0); the diffusion then starts from its encoder and decoder.
    """
    from amvi_jax import samplers  # configs stay importable without touching jax at load

    config.name = name
    config.sampler = samplers.default_config(name)
    config.sampler.name = name
    config.sampler.num_steps = num_steps
    config.train.pretrain_steps = 20_000
    # Measured: at 1e-3 the warm-started LDVI loss climbs again after ~250 steps (heavy-tailed
    # log-weights of tasks whose posterior is much narrower than q0); 3e-4 descends steadily.
    config.train.diffusion_learning_rate = 3e-4
    config.train.num_steps = 21_000
    config.train.validate_every = 500
    config.train.checkpoint_every = 500
    config.train.log_every = 100
    return config
