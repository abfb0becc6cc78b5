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


@pytest.mark.slow
def test_resample_move_evaluation_and_dial_point(tiny_run, tmp_path):
    """The second dial: the run's own sampler, then its particles resampled and moved. All P
    weights are equal afterwards (ESS = P exactly) and carry the sampler's own log Z-hat."""
    summary = experiment.reevaluate(tiny_run, dict(refine_moves=2, plot_tasks=0),
                                    str(tmp_path / "moved"))
    particles = experiment.restore(tiny_run).config.eval.num_particles
    assert summary["refine_moves"] == 2 and summary["refine_temperatures"] == 0
    for row in summary["context_sizes"].values():
        assert row["ess_median"] == pytest.approx(particles, rel=1e-4)
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    point = dial.dial_point(experiment.restore(tiny_run), 4, 4, "mala", moves=2)
    assert (point["temperatures"], point["moves"]) == (4, 2)
    assert point["ess"] == pytest.approx(particles, rel=1e-4) and point["per_task_s"] > 0
