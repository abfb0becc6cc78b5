"""Evaluation as its own entry: a finished run's best checkpoint under another protocol."""

import json
import os

import pytest

from amvi_jax import experiment
from experiments import main as main_entry


def _average(path):
    with open(path) as f:
        return json.load(f)["average"]


@pytest.mark.slow
def test_reevaluation_repeats_the_run_and_changes_only_what_it_is_told(tiny_run, tmp_path):
    run_dir = tiny_run
    own = os.path.join(run_dir, "eval.json")
    with open(own) as f:
        before = f.read()
    # Same protocol: the same numbers as the run's own evaluation, bit for bit.
    same = experiment.reevaluate(run_dir, {}, str(tmp_path / "same"))
    assert same["average"] == _average(own)
    assert "lmlhd_oracle_median" in same["average"]  # sinusoid1d has a Bayes limit
    # Another protocol: other particles and context sizes, written elsewhere.
    out = os.path.join(run_dir, main_entry.output_name({"num_particles": 32}))
    other = experiment.reevaluate(run_dir, {"num_particles": 32, "context_sizes": (0, 4)}, out)
    assert other["num_particles"] == 32 and sorted(other["context_sizes"]) == ["0", "4"]
    assert os.path.isfile(os.path.join(out, "eval.json"))
    with open(own) as f:
        assert f.read() == before  # the run's own evaluation is left alone
    with pytest.raises(ValueError, match="eval.num_particle"):
        experiment.reevaluate(run_dir, {"num_particle": 32}, str(tmp_path / "bad"))
    with pytest.raises(ValueError, match="eval.num_particles"):
        experiment.reevaluate(run_dir, {"num_particles": 0}, str(tmp_path / "bad"))


def test_output_folder_names_the_changed_fields():
    assert main_entry.output_name({}) == os.path.join("evaluations", "as_trained")
    assert main_entry.output_name({"num_particles": 4096, "context_sizes": (0, 8)}) == (
        os.path.join("evaluations", "context_sizes=(0,8),num_particles=4096"))
