"""The benchmark runner end to end on the tiny preset: cells, reuse, table, figures."""

import json
import os

import numpy as np
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
    # The K sweep (K = 1 on seed 0) compares with the main K = 2 cell of seed 0 only.
    assert "| sinusoid1d | ula | 1 | 1 |" in md and "| sinusoid1d | ula | 2 | 1 |" in md
    for fig in ("lmlhd_vs_context_sinusoid1d.png", "elbo_gap_vs_k.png",
                "posterior_samples_sinusoid1d.png"):
        assert os.path.isfile(os.path.join(out, fig))
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["preset"] == "tiny"
    # Diffusion cells start from the Gaussian cell of the same seed.
    with open(os.path.join(out, "sinusoid1d", "ula", "seed0", "config.json")) as f:
        assert json.load(f)["train"]["init_from"].endswith(os.path.join("np", "seed0"))

    # Gain over np is paired by seed; np itself has none.
    assert "gain_vs_np" not in rows["np"]
    diffs = [rows["ula"]["lmlhd_snis"][0] - rows["np"]["lmlhd_snis"][0]]
    assert rows["ula"]["gain_vs_np"][0] == pytest.approx(diffs[0])
    assert rows["ula"]["gain_vs_np"][1] >= 0

    # --collect rebuilds the same table from the finished cells alone.
    collected = benchmark.collect(out, "tiny")
    again = {r["method"]: r for r in collected["rows"]}
    assert {m: r["seeds"] for m, r in again.items()} == {"np": 2, "ula": 2}
    assert again["ula"]["lmlhd_snis"] == rows["ula"]["lmlhd_snis"]
    assert again["ula"]["gain_vs_np"] == rows["ula"]["gain_vs_np"]
    assert [r["num_steps"] for r in collected["records"] if not r.get("main", True)] == [1]

    # A second call reuses every finished cell: nothing is retrained.
    mtimes = {p: os.path.getmtime(p) for p in _eval_files(out)}
    benchmark.run(out, ["np", "ula"], ["sinusoid1d"], [0, 1], "tiny", sweep_methods=("ula",),
                  sweep_seeds=[0])
    assert mtimes == {p: os.path.getmtime(p) for p in _eval_files(out)}


@pytest.mark.slow
def test_runner_compares_gmm_np_with_amortized_methods_on_its_model(tmp_path, data_dir,
                                                                     monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    out = str(tmp_path / "bench")
    results = benchmark.run(out, ["np", "gmm"], ["sinusoid1d"], [0], "tiny", sweep_methods=(),
                            model_like="gmm")
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"np", "gmm"}
    for r in rows.values():  # GMM-NP gets the same columns: ELBO gap, ESS and test time
        assert {"elbo_gap", "ess", "per_task_s", "test_split_s"} <= set(r)
        assert r["per_task_s"] > 0 and r["lmlhd_snis"][0] < 0
    with open(os.path.join(out, "sinusoid1d", "np", "seed0", "config.json")) as f:
        model = json.load(f)["model"]
    assert (model["dim_z"], model["decoder_hidden"], model["learn_std_y"]) == (3, [8, 8], False)
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "| sinusoid1d | gmm | 1 |" in md and "model of `gmm`" in md
    samples = benchmark.posterior_samples(os.path.join(out, "sinusoid1d", "gmm", "seed0"), 2, 2,
                                          benchmark._ais_config("tiny"))
    assert samples["z"].shape == (2, 16, 3) and samples["z_ref"].shape == (2, 16, 3)
    assert np.all(np.isfinite(samples["log_w"])) and np.all(np.isfinite(samples["log_w_ref"]))
    assert os.path.isfile(os.path.join(out, "posterior_samples_sinusoid1d.png"))


def test_model_like_gives_every_method_the_shared_decoder_and_latent():
    own = benchmark.method_config("ldvi", "sinusoid1d", 0, "tiny")
    shared = benchmark.method_config("ldvi", "sinusoid1d", 0, "tiny", model_like="gmm")
    assert own.model.dim_z == 2 and shared.model.dim_z == 3
    assert shared.model.activation == "tanh" and not shared.model.learn_std_y
    assert shared.model.encoder_hidden == own.model.encoder_hidden  # the encoder stays
    assert shared.sampler.name == "ldvi"
    with pytest.raises(ValueError, match="valid: np, np_mean"):
        benchmark.method_config("np", "sinusoid1d", 0, "tiny", model_like="maf")


def test_overrides_reach_the_configs_that_have_the_field(tmp_path):
    overrides = benchmark.parse_overrides(["sampler.stop_grad_score=True",
                                           "train.num_steps=7", "sampler.name=ula"])
    assert overrides == {"sampler.stop_grad_score": True, "train.num_steps": 7,
                         "sampler.name": "ula"}
    del overrides["sampler.name"]
    ldvi = benchmark.method_config("ldvi", "sinusoid1d", 0, "tiny", overrides=overrides)
    assert ldvi.sampler.stop_grad_score is True and ldvi.train.num_steps == 7
    gaussian = benchmark.method_config("np", "sinusoid1d", 0, "tiny", overrides=overrides)
    assert "stop_grad_score" not in gaussian.sampler and gaussian.train.num_steps == 7
    with pytest.raises(ValueError, match="expected field.path=value"):
        benchmark.parse_overrides(["stop_grad_score"])
    with pytest.raises(ValueError, match="'sampler.stop_gradient': no such field"):
        benchmark.run(str(tmp_path), ["np", "ldvi"], ["sinusoid1d"], [0], "tiny",
                      overrides={"sampler.stop_gradient": True})
    assert not os.listdir(tmp_path)  # rejected before any training


def _eval_files(out):
    return sorted(os.path.join(root, f) for root, _, files in os.walk(out) for f in files
                  if f == "eval.json")


def test_collect_rejects_an_empty_output_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished cell"):
        benchmark.collect(str(tmp_path), "tiny")


def test_unknown_method_and_preset_list_valid_names():
    with pytest.raises(ValueError, match="valid: np, np_mean, ula"):
        benchmark.method_config("vae", "sinusoid1d", 0, "tiny")
    with pytest.raises(ValueError, match="valid: tiny, cpu, paper"):
        benchmark.preset_settings("huge")
