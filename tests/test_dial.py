"""The test-time compute dials end to end: a finished run evaluated anew with resample-move
steps after its own sampler, and the dial script's points on it (AIS from q0, then moves)."""

import numpy as np
import pytest

from amvi_jax import experiment
from experiments import dial


@pytest.mark.slow
def test_refined_evaluation_and_dial_points(tiny_run, tmp_path):
    summary = experiment.reevaluate(tiny_run, dict(refine_moves=2, plot_tasks=0),
                                    str(tmp_path / "moved"))
    run = experiment.restore(tiny_run)
    particles = run.config.eval.num_particles
    assert (summary["refine_temperatures"], summary["refine_moves"]) == (0, 2)
    assert summary["test_time"]["per_task_s"] > 0
    # The learned sampler's particles resampled and moved (tested on known targets in
    # test_reference.py): all P weights equal afterwards (ESS = P exactly).
    for row in summary["context_sizes"].values():
        assert row["ess_median"] == pytest.approx(particles, rel=1e-4)
    assert np.isfinite(summary["average"]["lmlhd_snis_median"])
    # Both dials at once through the dial script: AIS from q0, then its particles moved.
    own, refined = (dial.dial_point(run, t, 4, "mala", moves=m) for t, m in ((0, 0), (4, 2)))
    for point in (own, refined):
        assert np.isfinite(point["lmlhd_snis"]) and point["per_task_s"] > 0
    # A different inference (AIS's unbiasedness and tightening are tested on a known target in
    # test_gap.py), not the run's own sampler again.
    assert refined["elbo"] != own["elbo"]
    assert (own["temperatures"], refined["temperatures"], refined["moves"]) == (0, 4, 2)
    assert refined["ess"] == pytest.approx(particles, rel=1e-4) and own["ess"] < particles
