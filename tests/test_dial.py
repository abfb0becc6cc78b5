"""The test-time compute dials end to end: a finished run evaluated anew with AIS refinement
and resample-move steps, and the dial script's points on it."""

import numpy as np
import pytest

from amvi_jax import experiment
from experiments import dial


@pytest.mark.slow
def test_refined_evaluation_and_dial_points(tiny_run, tmp_path):
    # Both dials at once: AIS from q0, then its particles resampled and moved. All P weights
    # are equal afterwards (ESS = P exactly) and carry AIS's log Z-hat.
    summary = experiment.reevaluate(
        tiny_run, dict(refine_temperatures=4, refine_pilots=8, refine_moves=2, plot_tasks=0),
        str(tmp_path / "refined"))
    run = experiment.restore(tiny_run)
    particles = run.config.eval.num_particles
    assert (summary["refine_temperatures"], summary["refine_moves"]) == (4, 2)
    assert summary["test_time"]["per_task_s"] > 0
    for row in summary["context_sizes"].values():
        assert row["ess_median"] == pytest.approx(particles, rel=1e-4)
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    own, refined, moved = (dial.dial_point(run, t, 4, "mala", moves=m)
                           for t, m in ((0, 0), (4, 0), (0, 2)))
    for point in (own, refined, moved):
        assert np.isfinite(point["lmlhd_snis"]) and point["per_task_s"] > 0
    # A different inference (its unbiasedness and tightening are tested on a known target in
    # test_gap.py), not the run's own sampler again.
    assert refined["elbo"] != own["elbo"]
    assert (own["temperatures"], refined["temperatures"], moved["moves"]) == (0, 4, 2)
    # The learned sampler's particles resampled and moved (tested on known targets in
    # test_reference.py): equal weights, and the run's own weights were not.
    assert moved["ess"] == pytest.approx(particles, rel=1e-4) and own["ess"] < particles
