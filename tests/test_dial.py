"""The test-time compute dial end to end: a finished run evaluated anew with AIS refinement,
and the dial script's points on it."""

import numpy as np
import pytest

from amvi_jax import experiment
from experiments import dial


@pytest.mark.slow
def test_refined_evaluation_and_dial_points(tiny_run, tmp_path):
    summary = experiment.reevaluate(
        tiny_run, dict(refine_temperatures=4, refine_pilots=8, plot_tasks=0),
        str(tmp_path / "refined"))
    assert summary["refine_temperatures"] == 4 and summary["test_time"]["per_task_s"] > 0
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    run = experiment.restore(tiny_run)
    own, refined = (dial.dial_point(run, t, 4, "mala") for t in (0, 4))
    for point in (own, refined):
        assert np.isfinite(point["lmlhd_snis"]) and point["per_task_s"] > 0
    # A different inference (its unbiasedness and tightening are tested on a known target in
    # test_gap.py), not the run's own sampler again.
    assert refined["elbo"] != own["elbo"]
    assert (own["temperatures"], refined["temperatures"]) == (0, 4)
