"""Performance measurements behind `python -m experiments.perf` (docs/PERFORMANCE.md).

`timing` holds the shared settings and timers; `sampler_overhead`, `training_step` and
`evaluation` each measure one section; `goals` judges the results; `suite` runs everything in
one process; `report` turns the results into the Markdown block of docs/PERFORMANCE.md.
"""
