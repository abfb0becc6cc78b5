"""End to end: the absl entry point on a tiny config leaves everything a run promises."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run_main(config_file, workdir, data_dir, *extra):
    flags = [
        f"--config={config_file}", f"--workdir={workdir}",
        f"--config.data.data_dir={data_dir}",
        "--config.data.num_tasks=8", "--config.data.num_points=8",
        "--config.data.num_test_points=16", "--config.data.num_validation_tasks=4",
        "--config.data.num_test_tasks=4",
        "--config.model.encoder_hidden=(16,)", "--config.model.decoder_hidden=(16,)",
        "--config.train.num_steps=12", "--config.train.batch_size=4",
        "--config.train.log_every=4", "--config.train.validate_every=6",
        "--config.train.checkpoint_every=6",
        "--config.eval.context_sizes=(0,2,8)", "--config.eval.num_particles=16",
        "--config.eval.task_chunk=4", "--config.eval.validation_particles=8",
        "--config.eval.plot_tasks=2", "--config.eval.plot_context_sizes=(0,4)", *extra]
    return subprocess.run([sys.executable, "-m", "experiments.main", *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


# One config: the entry point is the same for every config, and
# tests/test_configuration.py validates each shipped one.
@pytest.mark.slow
def test_main_leaves_checkpoints_metrics_eval_and_plots(tmp_path, data_dir):
    config_file = "configs/np.py"
    workdir = tmp_path / "run"
    proc = _run_main(config_file, workdir, data_dir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "steps/s" in proc.stderr and "ETA" in proc.stderr
    for name in ("config.json", "metrics.jsonl", "eval.json", "predictions.png",
                 "validation_vs_time.png"):
        assert (workdir / name).is_file(), name
    # The posterior's contours are drawn for 2-d latents only (the default is 4).
    assert not (workdir / "latent_samples.png").exists()
    assert os.listdir(workdir / "checkpoints" / "last")
    assert os.listdir(workdir / "checkpoints" / "best")
    with open(workdir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    train_records = [r for r in records if "loss" in r]
    assert [r["step"] for r in train_records] == [4, 8, 12]
    assert all({"step", "loss", "elbo", "steps_per_sec"} <= set(r) for r in train_records)
    with open(workdir / "eval.json") as f:
        summary = json.load(f)
    assert set(summary["context_sizes"]) == {"0", "2", "8"}
    keys = {"lmlhd_snis_median", "lmlhd_mc_median", "lmlhd_snis_median_per_point",
            "lmlhd_mc_median_per_point", "elbo_median", "mse_median"}
    assert keys <= set(summary["average"])
    assert all(keys <= set(s) for s in summary["context_sizes"].values())
    # The empty context's ELBO is the KL-free prior bound: log Z = 0 there.
    assert summary["context_sizes"]["0"]["elbo_median"] <= 1e-3

    # Running again resumes from the last checkpoint instead of starting over.
    again = _run_main(config_file, workdir, data_dir)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed from step 12" in again.stderr

    # --mode=evaluate re-evaluates the finished run under other eval fields, training nothing.
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.main", "--mode=evaluate", f"--workdir={workdir}",
         "--eval=num_particles=32", "--eval=context_sizes=(0,4)"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = workdir / "evaluations" / "context_sizes=(0,4),num_particles=32"
    with open(out / "eval.json") as f:
        assert set(json.load(f)["context_sizes"]) == {"0", "4"}
    assert "steps/s" not in proc.stderr and "lmlhd_snis" in proc.stdout


def test_main_rejects_bad_config_before_work(tmp_path, data_dir):
    proc = _run_main("configs/np.py", tmp_path / "bad", data_dir, "--config.train.num_steps=0")
    assert proc.returncode != 0
    assert "config.train.num_steps=0" in proc.stderr
    assert not (tmp_path / "bad").exists()
