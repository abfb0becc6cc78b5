"""Training in named parts: `objectives`, the amortized `step`, the shared `loop` and `state`.

`amvi_jax.experiment.train_and_evaluate(config, workdir)` puts them together for any method.
"""
