"""experiments/ablation.py: the cross-directory table pairs cells by seed."""

import os

import pytest

from amvi_jax import gap, workdir
from configs import default, presets
from experiments import ablation

TINY = presets.get_config("tiny")


def _cell(root, bench, method, seed, score, gap_value):
    path = os.path.join(root, bench, method, f"seed{seed}")
    os.makedirs(path)
    workdir.write_config(path, default.get_config())
    per_n = {n: dict(lmlhd_snis_median=score + int(n)) for n in ("0", "16")}
    workdir.write_json(os.path.join(path, "eval.json"), dict(
        average=dict(lmlhd_snis_median=score), context_sizes=per_n))
    ref = {f: 0.0 for f in gap.REFERENCE_FIELDS}
    workdir.write_json(os.path.join(path, "reference.json"), dict(
        context_sizes={}, average=dict(ref, elbo_gap=gap_value, ess=100.0)))


def test_variants_are_paired_by_seed_against_the_baseline_and_np(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    # b's np is a's + 2 on seeds 0 and 1 and has an extra seed 2 (left out of the pairing);
    # b's dds is its own np + 1 on every seed.
    for seed, score in enumerate((-10.0, -14.0)):
        _cell(a, "sinusoid1d", "np", seed, score, 3.0)
        _cell(b, "sinusoid1d", "np", seed, score + 2.0, 5.0)
        _cell(b, "sinusoid1d", "dds", seed, score + 3.0, 1.0)
    _cell(b, "sinusoid1d", "np", 2, -40.0, 5.0)
    lines = ablation.rows(ablation.parse_variants([f"elbo={a}", f"iw={b}"]), ["np", "dds"],
                          ["sinusoid1d"], [0, 1, 2], "elbo", TINY)
    by_variant = {(ln.split(" | ")[1], ln.split(" | ")[2]): ln.split(" | ") for ln in lines[2:]}
    assert by_variant["np", "elbo"][4] == "-12.00 ± 2.00"
    assert by_variant["np", "iw"][3] == "3"
    assert by_variant["np", "iw"][5] == "+2.00 ± 0.00"  # paired on seeds 0, 1 only
    assert by_variant["dds", "iw"][5] == "–"  # no dds in the baseline
    assert by_variant["dds", "iw"][6] == "+1.00 ± 0.00"
    assert by_variant["dds", "iw"][7] == "1.00 ± 0.00"
    assert by_variant["np", "elbo"][10].startswith("-12.00 ± 2.00 / 4.00")


def test_bad_variants_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="expected label=output_dir"):
        ablation.parse_variants(["runs/x"])
    with pytest.raises(ValueError, match="no such directory"):
        ablation.parse_variants([f"x={tmp_path / 'missing'}"])


def test_context_table_has_one_column_per_context_size(tmp_path):
    a = str(tmp_path / "a")
    for seed, score in enumerate((-10.0, -14.0)):
        _cell(a, "sinusoid1d", "np", seed, score, 3.0)
    lines = ablation.context_rows({"elbo": a}, ["np"], ["sinusoid1d"], [0, 1], TINY)
    assert lines[0] == "| benchmark | method | variant | n = 0 | n = 16 |"
    assert lines[2] == "| sinusoid1d | np | elbo | -12.00 ± 2.00 | 4.00 ± 2.00 |"
