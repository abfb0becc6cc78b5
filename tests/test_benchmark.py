"""The benchmark runner end to end on the tiny preset: cells, reuse, table, figures."""

import json
import os

import pytest

from amvi_jax import benchmark


@pytest.mark.slow
def test_runner_writes_a_well_formed_table_and_reuses_cells(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    out = str(tmp_path / "bench")
    results = benchmark.run(out, ["np", "ula"], ["sinusoid1d"], [0, 1], "tiny",
                            sweep_methods=("ula",), sweep_seeds=[0])
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"np", "ula"}
    for r in rows.values():
        assert r["seeds"] == 2
        mean, se = r["lmlhd_snis"]
        assert mean < 0 and se >= 0
        assert "elbo_gap" in r and "per_task_s" in r and r["per_task_s"] > 0
    # The ELBO lies below the AIS reference up to its Monte Carlo error on this tiny budget.
    for rec in results["records"]:
        assert rec["reference"]["average"]["elbo_gap"] > -1.0
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "| sinusoid1d | np | 2 |" in md and "| sinusoid1d | ula | 2 |" in md
    assert "ELBO gap against K" in md
    assert "| sinusoid1d | ula | 1 |" in md and "| sinusoid1d | ula | 2 |" in md
    for fig in ("lmlhd_vs_context_sinusoid1d.png", "elbo_gap_vs_k.png"):
        assert os.path.isfile(os.path.join(out, fig))
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["preset"] == "tiny"
    # Diffusion cells start from the Gaussian cell of the same seed.
    with open(os.path.join(out, "sinusoid1d", "ula", "seed0", "config.json")) as f:
        assert json.load(f)["train"]["init_from"].endswith(os.path.join("np", "seed0"))

    # A second call reuses every finished cell: nothing is retrained.
    mtimes = {p: os.path.getmtime(p) for p in _eval_files(out)}
    benchmark.run(out, ["np", "ula"], ["sinusoid1d"], [0, 1], "tiny", sweep_methods=("ula",),
                  sweep_seeds=[0])
    assert mtimes == {p: os.path.getmtime(p) for p in _eval_files(out)}


def _eval_files(out):
    return sorted(os.path.join(root, f) for root, _, files in os.walk(out) for f in files
                  if f == "eval.json")


def test_unknown_method_and_preset_list_valid_names():
    with pytest.raises(ValueError, match="valid: np, np_mean, ula"):
        benchmark.method_config("vae", "sinusoid1d", 0, "tiny")
    with pytest.raises(ValueError, match="valid: tiny, cpu, paper"):
        benchmark.preset_settings("huge")
