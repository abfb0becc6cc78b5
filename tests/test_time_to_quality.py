"""experiments/time_to_quality (experiments.measure.quality): variants, first crossing, report."""

import json

import numpy as np
import pytest

from amvi_jax import configuration
from experiments.measure import quality as ttq


def test_variants_are_valid_configs_on_the_fixed_data_and_unknown_names_list_the_valid():
    for name in ttq.VARIANTS:
        config = ttq.variant_config(name, budget_s=60.0, validate_every=100, seed=0)
        configuration.validate(config)
        assert (config.data.benchmark, config.data.num_tasks, config.data.num_points,
                config.data.noise_std) == ("linesine1d", 1024, 16, 0.1)
        assert config.train.time_budget_s == 60.0
    assert ttq.variant_config("after", 60.0, 100, 0).train.batch_size == 32
    with pytest.raises(ValueError, match="unknown variant 'fast'; valid: before, after"):
        ttq.variant_config("fast", 60.0, 100, 0)


def test_time_to_target_is_the_first_crossing_not_the_best(tmp_path):
    lines = [dict(step=0, time_s=1.0, val_lmlhd_snis=-30.0),
             dict(step=10, time_s=4.0, loss=1.0, steps_per_sec=5.0),
             dict(step=10, time_s=5.0, val_lmlhd_snis=-12.0),
             dict(step=20, time_s=9.0, val_lmlhd_snis=-15.0),
             dict(step=30, time_s=12.0, val_lmlhd_snis=-11.0)]
    with open(tmp_path / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(ln) + "\n" for ln in lines)
    t, v = ttq.curve(str(tmp_path))
    np.testing.assert_array_equal(t, [1.0, 5.0, 9.0, 12.0])
    assert ttq.time_to(-13.0, t, v) == 5.0
    assert ttq.time_to(-11.5, t, v) == 12.0
    assert ttq.time_to(-10.0, t, v) == float("inf")
    runs = [dict(variant="before", round=0, workdir=str(tmp_path), time_to_target_s=12.0,
                 best_validation=-11.0, steps_per_s=5.0, test_lmlhd_snis=-11.2),
            dict(variant="after", round=0, workdir=str(tmp_path), time_to_target_s=3.0,
                 best_validation=-10.0, steps_per_s=9.0, test_lmlhd_snis=-10.1)]
    table = ttq.report(runs, -11.5)
    assert "| after | batch_size=32, learning_rate=0.003 | 1 | 9 | 3 | 4.00x |" in table
    runs[0]["time_to_target_s"] = float("inf")  # the first never got there: no ratio
    assert "| after | batch_size=32, learning_rate=0.003 | 1 | 9 | 3 | – |" in ttq.report(
        runs, -11.5)
