"""The benchmark runner: cells, warm starts, reuse, the table and its statistics, figures."""

import json
import os

import numpy as np
import pytest

from amvi_jax import samplers
from configs import presets
from experiments import runner
from experiments.runner import cells, report

TINY = presets.get_config("tiny")


@pytest.mark.slow
def test_runner_writes_a_well_formed_table_and_reuses_cells(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    out = str(tmp_path / "bench")
    results = runner.run(out, ["np", "ula"], ["sinusoid1d"], [0, 1], TINY,
                         sweep_methods=("ula",), sweep_seeds=[0])
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"np", "ula"}
    for r in rows.values():
        assert r["seeds"] == 2
        mean, se = r["lmlhd_snis"]
        assert mean < 0 and se >= 0
        assert {"elbo_gap", "lmlhd_ref", "inference_gain", "per_task_s"} <= set(r)
        assert r["per_task_s"] > 0
    # The ELBO lies below the AIS reference up to its Monte Carlo error on this tiny budget.
    for rec in results["records"]:
        assert rec["reference"]["average"]["elbo_gap"] > -1.0
    # A diffusion cell's wall time continues from the Gaussian cell it warm-starts from.
    np_time = {r["seed"]: r["train_time_s"] for r in results["records"] if r["method"] == "np"}
    for rec in results["records"]:
        assert rec["train_time_s"] > (np_time[rec["seed"]] if rec["method"] == "ula" else 0)
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "| sinusoid1d | np | 2 |" in md and "| sinusoid1d | ula | 2 |" in md
    # The Bayes limit: a row of its own, each method's distance to it, the split of that
    # distance on the reference tasks (model + inference part = the whole, per task).
    limit = rows["np"]["lmlhd_oracle"]
    assert f"| sinusoid1d | **Bayes limit** | – | {limit:.2f} | 0 |" in md
    for r in rows.values():
        assert r["gap_to_oracle"][0] == pytest.approx(limit - r["lmlhd_snis"][0], abs=1e-9)
    for rec in results["records"]:
        ref = rec["reference"]
        for v in ref["context_sizes"].values():
            # The median of two tasks is their mean, so here the parts add up exactly.
            assert v["model_gap"] + v["inference_gain"] == pytest.approx(v["gap_to_oracle"])
    assert "to the limit | model part | inference part" in md
    assert "ELBO gap against K" in md
    # The K sweep (K = 1 on seed 0) compares with the main K = 2 cell of seed 0 only.
    assert "| sinusoid1d | ula | 1 | 1 |" in md and "| sinusoid1d | ula | 2 | 1 |" in md
    for fig in ("lmlhd_vs_context_sinusoid1d.png", "elbo_gap_vs_k.png",
                "posterior_samples_sinusoid1d.png", "validation_vs_time_sinusoid1d.png"):
        assert os.path.isfile(os.path.join(out, fig))
    with open(os.path.join(out, "results.json")) as f:
        assert json.load(f)["preset"] == "tiny"
    # Diffusion cells start from the Gaussian cell of the same seed.
    with open(os.path.join(out, "sinusoid1d", "ula", "seed0", "config.json")) as f:
        assert json.load(f)["train"]["init_from"].endswith(os.path.join("np", "seed0"))

    # --collect rebuilds the same table from the finished cells alone.
    collected = runner.collect(out, TINY)
    again = {r["method"]: r for r in collected["rows"]}
    assert {m: r["seeds"] for m, r in again.items()} == {"np": 2, "ula": 2}
    assert again["ula"]["lmlhd_snis"] == rows["ula"]["lmlhd_snis"]
    assert [r["num_steps"] for r in collected["records"] if not r.get("main", True)] == [1]

    # A second call reuses every finished cell: nothing is retrained.
    mtimes = {p: os.path.getmtime(p) for p in _eval_files(out)}
    runner.run(out, ["np", "ula"], ["sinusoid1d"], [0, 1], TINY, sweep_methods=("ula",),
               sweep_seeds=[0])
    assert mtimes == {p: os.path.getmtime(p) for p in _eval_files(out)}


@pytest.mark.slow
def test_runner_compares_gmm_np_with_amortized_methods_on_its_model(tmp_path, data_dir,
                                                                     monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    out = str(tmp_path / "bench")
    results = runner.run(out, ["np", "gmm"], ["sinusoid1d"], [0], TINY, sweep_methods=(),
                         model_like="gmm")
    rows = {r["method"]: r for r in results["rows"]}
    assert list(rows) == ["np", "gmm"]  # Gaussian NPs first, other methods last
    for r in rows.values():  # GMM-NP gets the same columns: ELBO gap, ESS and test time
        assert {"elbo_gap", "ess", "per_task_s", "test_split_s"} <= set(r)
        assert r["per_task_s"] > 0 and r["lmlhd_snis"][0] < 0
    with open(os.path.join(out, "sinusoid1d", "np", "seed0", "config.json")) as f:
        model = json.load(f)["model"]
    assert (model["dim_z"], model["decoder_hidden"], model["learn_std_y"]) == (3, [8, 8], False)
    with open(os.path.join(out, "results.md")) as f:
        md = f.read()
    assert "| sinusoid1d | gmm | 1 |" in md and "model of `gmm`" in md
    from amvi_jax import gap

    samples = gap.posterior_samples(os.path.join(out, "sinusoid1d", "gmm", "seed0"), 2, 2,
                                    cells.ais_config(TINY))
    assert samples["z"].shape == (2, 16, 3) and samples["z_ref"].shape == (2, 16, 3)
    assert np.all(np.isfinite(samples["log_w"])) and np.all(np.isfinite(samples["log_w_ref"]))
    assert os.path.isfile(os.path.join(out, "posterior_samples_sinusoid1d.png"))


def _record(method, seed, score, kind="gaussian"):
    return dict(benchmark="b", method=method, seed=seed, kind=kind,
                eval=dict(average=dict(lmlhd_snis_median=score, lmlhd_mc_median=score,
                                       mse_median=0.1),
                          context_sizes={"0": dict(lmlhd_snis_median=score)}))


@pytest.mark.slow
def test_task_count_sweep_under_a_wall_clock_budget(tmp_path, data_dir, monkeypatch):
    """T in {8, 16}: one benchmark row per T with that many meta-training tasks; every cell
    stops at the budget (here its first step), and the diffusion warm-starts from a Gaussian
    cell given its share of the budget, so its clock starts past it and it keeps its start."""
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    preset = presets.get_config("tiny")
    preset.update(dict(num_tasks=(8, 16), time_budget_s=1e-6, warm_start_share=0.5))
    preset.steps.update(dict(gaussian=1000, diffusion=1000))
    preset.eval.plot_tasks, preset.reference.tasks = 0, 1  # keep the test short
    out = str(tmp_path / "tsweep")
    results = runner.run(out, ["ula"], ["sinusoid1d"], [0], preset, sweep_methods=())
    assert {r["benchmark"] for r in results["rows"]} == {"sinusoid1d_T8", "sinusoid1d_T16"}

    def cell(t, method):
        with open(os.path.join(out, f"sinusoid1d_T{t}", method, "seed0", "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(out, f"sinusoid1d_T{t}", method, "seed0", "metrics.jsonl")) as f:
            lines = [json.loads(line) for line in f]
        return config, lines

    for t in (8, 16):
        warm, lines = cell(t, "np_warm")
        assert warm["data"]["num_tasks"] == t and warm["train"]["time_budget_s"] == 0.5e-6
        assert [ln["step"] for ln in lines if "loss" in ln] == [1]  # stopped by the budget
        ula, ula_lines = cell(t, "ula")
        assert ula["data"]["num_tasks"] == t and ula["train"]["time_budget_s"] == 1e-6
        assert ula["train"]["init_from"].endswith(os.path.join("np_warm", "seed0"))
        assert not [ln for ln in ula_lines if "loss" in ln]  # the budget was spent before it
    with open(os.path.join(out, "results.md")) as f:
        text = f.read()
    assert "| sinusoid1d_T16 | ula | 1 |" in text
    # The T-sweep table and figure: one row per T, test lmlhd against T.
    assert [(r["benchmark"], r["num_tasks"], r["method"]) for r in results["t_sweep"]] == [
        ("sinusoid1d", 8, "ula"), ("sinusoid1d", 16, "ula")]
    assert "| sinusoid1d | 16 | ula | 1 |" in text
    assert os.path.exists(os.path.join(out, "lmlhd_vs_num_tasks_sinusoid1d.png"))


def test_training_curve_of_a_warm_started_cell_starts_with_its_warm_start(tmp_path):
    """The warm start validated at 0, 5 and 10 s; the diffusion continues its clock (its start,
    again at 10 s, then 15 s). Best validation by 7 s is the warm start's, by 20 s its own."""
    def run_dir(name, init_from, points):
        path = tmp_path / name
        path.mkdir()
        (path / "config.json").write_text(json.dumps(dict(train=dict(init_from=init_from))))
        (path / "metrics.jsonl").write_text("".join(
            json.dumps(dict(step=i, time_s=t, val_lmlhd_snis=v)) + "\n"
            for i, (t, v) in enumerate(points)))
        return str(path)

    warm = run_dir("warm", "", [(0.0, -50.0), (5.0, -20.0), (10.0, -15.0)])
    cell = dict(workdir=run_dir("ldvi", warm, [(10.0, -15.0), (15.0, -12.0)]), init_from=warm)
    t, v = report.training_curve(cell)
    np.testing.assert_array_equal(t, [0.0, 5.0, 10.0, 15.0])
    assert [report.best_by(t, v, w) for w in (7.0, 12.0, 20.0)] == [-20.0, -15.0, -12.0]
    assert np.isnan(report.best_by(t, v, -1.0))


def test_gain_over_np_is_paired_by_seed():
    """np has seeds 0, 1, 2; ldvi only 0 and 2. The gain averages ldvi - np on the shared
    seeds (+1 and +3: 2 ± 1), not the difference of the two means (11 - 10.33), and np's
    seed-1 outlier cannot leak into it."""
    records = [_record("np", 0, -10.0), _record("np", 1, -30.0), _record("np", 2, -12.0),
               _record("ldvi", 0, -9.0, "ldvi"), _record("ldvi", 2, -9.0, "ldvi")]
    rows = {r["method"]: r for r in report.aggregate(records)}
    assert "gain_vs_np" not in rows["np"]
    assert rows["ldvi"]["gain_vs_np"] == pytest.approx((2.0, 1.0))
    assert rows["ldvi"]["gain_seeds"] == 2
    assert rows["np"]["lmlhd_snis"][0] == pytest.approx(-52.0 / 3)
    assert rows["ldvi"]["lmlhd_snis"] == (pytest.approx(-9.0), pytest.approx(0.0))


def test_image_table_reports_the_literature_protocol_per_method_over_seeds():
    def image_record(method, seed, tar_ll):
        sizes = {n: dict(lmlhd_snis_median_per_point=0.5 + int(n) / 1000, mse_median=0.05,
                         spread_median=0.01 * (1 + seed)) for n in ("0", "10", "400")}
        return dict(benchmark="mnist", method=method, seed=seed, kind="gaussian",
                    train_time_s=300.0, eval=dict(
                        context_sizes=sizes, test_time=dict(per_task_s=0.01),
                        literature=dict(ctx_ll=1.0, tar_ll=tar_ll)))

    records = [image_record("np", 0, 0.7), image_record("np", 1, 0.9),
               image_record("dds", 0, 0.8)]
    lines = report.image_table(records, "mnist").splitlines()
    assert lines[0].startswith("| method | seeds | ctx_ll | tar_ll | lmlhd/pixel n=0 |")
    assert "spread n=10" in lines[0]  # the smallest non-empty context
    np_row = next(line for line in lines if line.startswith("| np |")).split(" | ")
    assert np_row[1] == "2" and np_row[3] == "0.800 ± 0.100"  # tar_ll over the two seeds
    assert np_row[4] == "0.500 ± 0.000" and np_row[6] == "0.900 ± 0.000"
    assert report.image_table([_record("np", 0, -1.0)], "b") == ""  # not images: no table


def test_rows_follow_the_registries():
    """Gaussian NPs (np first), then diffusions in sampler-registry order, then the rest."""
    names = ["gmm", "cmcd", "np_mean", "ldvi", "np", "ula"]
    kinds = {"gmm": "gmm", "cmcd": "cmcd", "np_mean": "gaussian", "ldvi": "ldvi",
             "np": "gaussian", "ula": "ula"}
    records = [_record(m, 0, -1.0, kinds[m]) for m in names]
    order = [r["method"] for r in report.aggregate(records)]
    diffusions = sorted(["cmcd", "ldvi", "ula"], key=samplers.NAMES.index)
    assert order == ["np", "np_mean", *diffusions, "gmm"]


def test_every_config_is_a_method_and_diffusions_find_their_gaussian_base():
    methods = cells.available_methods()
    assert {"np", "np_mean", "gmm", *samplers.DIFFUSIONS} <= set(methods)
    assert "default" not in methods and "presets" not in methods
    for name in samplers.DIFFUSIONS:
        assert cells.warm_start_method(name) == "np"
    for method in methods:
        config = cells.base_config(method)
        if cells.is_diffusion(config):
            base = cells.base_config(cells.warm_start_method(method))
            assert base.sampler.name == "gaussian" and base.model == config.model, method


def test_model_like_gives_every_method_the_shared_decoder_and_latent():
    own = cells.method_config("ldvi", "sinusoid1d", 0, TINY)
    shared = cells.method_config("ldvi", "sinusoid1d", 0, TINY, model_like="gmm")
    assert own.model.dim_z == 4 and shared.model.dim_z == 3
    assert shared.model.activation == "tanh" and not shared.model.learn_std_y
    assert shared.model.encoder_hidden == own.model.encoder_hidden  # the encoder stays
    assert shared.sampler.name == "ldvi"
    with pytest.raises(ValueError, match=f"valid: {', '.join(cells.available_methods())}"):
        cells.method_config("np", "sinusoid1d", 0, TINY, model_like="maf")


def test_the_mnist_preset_gives_every_method_one_image_model_under_one_budget():
    mnist = presets.get_config("mnist")
    np_cell = cells.method_config("np", "tfds:mnist", 0, mnist)
    gmm = cells.method_config("gmm", "tfds:mnist@T1024", 0, mnist)
    for config in (np_cell, gmm):
        assert config.model.dim_z == 16 and config.model.heteroscedastic_std
        assert tuple(config.model.grid_shape) == (28, 28)
        assert config.train.time_budget_s == 300.0 and config.data.num_test_points == 784
    assert tuple(np_cell.model.encoder_hidden) == (128, 128)  # the encoder: amortized only
    assert gmm.data.num_tasks == 1024 and np_cell.data.num_tasks == 60_000 - 256
    assert gmm.gmm.num_components == 3 and gmm.model.activation == "gelu"


def test_preset_network_widths_reach_only_samplers_with_a_network():
    ula = cells.method_config("ula", "sinusoid1d", 0, TINY)
    mcd = cells.method_config("mcd", "sinusoid1d", 0, TINY)
    assert "hidden" not in ula.sampler and tuple(mcd.sampler.hidden) == (8,)
    assert ula.train.num_steps == mcd.train.num_steps == TINY.steps.diffusion
    assert ula.train.pretrain_steps == 0 and ula.sampler.num_steps == TINY.num_steps


def test_overrides_reach_the_configs_that_have_the_field(tmp_path):
    overrides = cells.parse_overrides(["sampler.stop_grad_score=True",
                                       "train.num_steps=7", "sampler.name=ula"])
    assert overrides == {"sampler.stop_grad_score": True, "train.num_steps": 7,
                         "sampler.name": "ula"}
    del overrides["sampler.name"]
    ldvi = cells.method_config("ldvi", "sinusoid1d", 0, TINY, overrides=overrides)
    assert ldvi.sampler.stop_grad_score is True and ldvi.train.num_steps == 7
    gaussian = cells.method_config("np", "sinusoid1d", 0, TINY, overrides=overrides)
    assert "stop_grad_score" not in gaussian.sampler and gaussian.train.num_steps == 7
    with pytest.raises(ValueError, match="expected field.path=value"):
        cells.parse_overrides(["stop_grad_score"])
    with pytest.raises(ValueError, match="'sampler.stop_gradient': no such field"):
        runner.run(str(tmp_path), ["np", "ldvi"], ["sinusoid1d"], [0], TINY,
                   overrides={"sampler.stop_gradient": True})
    assert not os.listdir(tmp_path)  # rejected before any training


def _eval_files(out):
    return sorted(os.path.join(root, f) for root, _, files in os.walk(out) for f in files
                  if f == "eval.json")


def test_collect_rejects_an_empty_output_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished cell"):
        runner.collect(str(tmp_path), TINY)


def test_unknown_method_preset_and_sweep_method_list_valid_names(tmp_path):
    valid = ", ".join(cells.available_methods())
    with pytest.raises(ValueError, match=f"unknown method 'vae'; valid: {valid}$"):
        cells.method_config("vae", "sinusoid1d", 0, TINY)
    with pytest.raises(ValueError, match="valid: tiny, cpu, paper"):
        presets.get_config("huge")
    with pytest.raises(ValueError, match="sweep method 'np' has no K; valid: cmcd, .*ldvi"):
        runner.run(str(tmp_path), ["np"], ["sinusoid1d"], [0], TINY, sweep_methods=("np",))
