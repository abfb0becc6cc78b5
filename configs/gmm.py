"""GMM-NP (Volpp et al., ICLR 2023): a per-task Gaussian-mixture posterior, no encoder.

A small diff on the default config. The decoder, d_z, K, the KL bound, the learning rate and
the sample sizes are the authors' tuned values for Sinusoid1D 64 x 16 (ALRhub/gmm_np,
config/model/GMMNP-Sinusoid1D_64_16.yaml and base/gmm_np.yaml). Budget differences, chosen so
the run fits a few minutes on a 2-core CPU: `train.num_steps` (the reference runs 1000 epochs
of 8 minibatches = 8000 steps) and `gmm.num_test_steps` (the reference adapts test posteriors
for 1000 steps). The prior is the library's N(0, I) (DESIGN section 1) unless
`gmm.prior_components = gmm.num_components` selects the reference's fixed 7-component prior.
`model.encoder_hidden`, `model.aggregation`, `sampler` and `train.{batch_size, num_subsets,
num_particles, grad_clip_norm, pretrain_steps, init_from}` are not used by this method.
"""

import ml_collections

from configs import default


def get_config():
    config = default.get_config()
    config.name = "gmm"
    config.method = "gmm"

    config.model.update(dict(
        dim_z=3,
        decoder_hidden=(8, 8),     # reference: 2 hidden layers of 8 units, tanh
        activation="tanh",
        learn_std_y=False,         # reference: fixed output std max(noise std, 0.1) = 0.25
        std_y=0.25,
    ))

    config.gmm = ml_collections.ConfigDict(dict(
        num_components=7,          # K, posterior components
        prior_components=0,        # 0: N(0, I); = num_components: Volpp's fixed GMM prior
        prior_scale=1.0,           # GMM prior / initial posterior: means ~ N(0, s^2), cov s^2 I
        num_samples_per_component=18,  # reference: 128 samples // 7 components
        kl_bound=1.0378864321132046e-3,  # per-component KL(new || old) bound (tuned)
        weight_step_size=1.0,      # log w += step * mean reward (reference: direct, 1.0)
        eta_max=1e5,               # smallest step 1 / eta_max (reference global upper bound)
        num_bisection=30,          # bisection steps in log eta over [0, log eta_max]
        num_context_sets=32,       # fixed context sets per meta-training task (0: full task)
        batch_size=256,            # posteriors (task, context set) per step, as the reference
        num_decoder_samples=32,    # z ~ q per posterior for the decoder step
        num_test_steps=300,        # updates of a fresh test mixture (reference: 1000)
    ))

    config.train.update(dict(
        num_steps=2_000,           # reference: 8000 (1000 epochs x 8 minibatches)
        learning_rate=1.8740597547322096e-3,  # tuned (reference); plain Adam, no clipping
        log_every=100,
        validate_every=2_000,      # each validation fits 64 tasks x 8 context sizes afresh
        checkpoint_every=500,
    ))
    config.eval.update(dict(task_chunk=64, validation_particles=128))
    return config
