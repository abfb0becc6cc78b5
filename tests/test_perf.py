"""experiments/measure: the --quick report is well-formed. No timing assertions (shared CPUs)."""

import dataclasses
import math

import pytest

from amvi_jax import samplers, workdir
from experiments.measure import cost, report, suite, timing


def _markdown_tables(text: str) -> list[list[list[str]]]:
    """Consecutive lines starting with '|' -> tables of rows of stripped cells."""
    tables, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            assert line.endswith("|"), line
            current.append([c.strip() for c in line[1:-1].split("|")])
        elif current:
            tables.append(current)
            current = []
    return tables


def test_full_settings_measure_every_diffusion():
    assert timing.FULL.overhead_samplers == samplers.DIFFUSIONS
    assert set(timing.QUICK.overhead_samplers) <= set(samplers.DIFFUSIONS)


def test_accel_settings_train_and_evaluate_accelerator_sized_batches():
    config = timing.make_config(timing.ACCEL, "ldvi", 8)
    assert config.train.batch_size == 256 and config.sampler.num_steps == 8
    assert timing.ACCEL.eval_chunk == 256 and timing.ACCEL.overhead_tasks == 256
    assert timing.make_config(timing.FULL).train.batch_size == 8  # the config's own


@pytest.mark.slow
def test_quick_report_is_well_formed(data_dir, tmp_path):
    settings = dataclasses.replace(timing.QUICK, data_dir=data_dir)
    results = suite.run(settings)
    block = report.render(results, "python -m experiments.perf --quick")
    assert block.startswith(report.BEGIN + "\n") and block.endswith(report.END + "\n")

    tables = _markdown_tables(block)
    # overhead, throughput, memory + compile, evaluation, steps against T, goals
    assert len(tables) == 6
    for table in tables:
        header, separator, *rows = table
        assert rows, table
        assert all(set(c) == {"-"} for c in separator), separator
        assert all(len(row) == len(header) for row in [separator, *rows]), table
        assert all(cell for row in table for cell in row), table
    overhead, throughput, memory, evaluation, scaling, goals = tables
    assert [r[0] for r in overhead[2:]] == list(settings.overhead_samplers)
    assert len(memory) - 2 == 1 + 2 * len(settings.memory_steps)  # Gaussian + K x remat
    assert len(throughput) - 2 == 1 + 2 * len(settings.train_steps)
    assert [r[0] for r in evaluation[2:]] == ["gaussian", settings.eval_sampler]
    assert [int(r[0]) for r in scaling[2:]] == list(settings.scaling_tasks)
    # GMM-NP's state is one mixture per (task, context set): linear in T.
    state = [r["gmm_state_bytes"] for r in results["task_scaling"]]
    assert state[1] * settings.scaling_tasks[0] == state[0] * settings.scaling_tasks[1]
    for row in scaling[2:]:
        assert all(math.isfinite(float(c)) and float(c) > 0 for c in row[1:]), row
    for row in overhead[2:] + throughput[2:] + evaluation[2:]:
        for cell in row[3:6]:
            assert math.isfinite(float(cell)) and float(cell) >= 0, row
    # ULA and LDVI carry their overhead goals, in the overhead table and among the goals.
    assert {r[0]: r[-1].split(":")[0] for r in overhead[2:]} == {"ula": "<= 1.5",
                                                                  "ldvi": "<= 2.5"}
    assert [r[0].split()[0] for r in goals[2:4]] == ["ULA", "LDVI"]
    assert {r[-1] for r in goals[2:]} <= {"met", "MISSED", "—"}

    # Static memory of the training step: remat never needs more than no remat.
    k = max(settings.memory_steps)
    by = {(r["num_steps"], r["remat"]): r for r in results["steps"]}
    for field in ("temp_bytes", "total_bytes"):
        assert 0 < by[(k, True)][field] <= by[(k, False)][field], field

    # The generated block replaces the old one; hand-written text around it survives.
    path = tmp_path / "PERFORMANCE.md"
    path.write_text(f"# Performance\n\nintro\n\n{report.BEGIN}\nold table\n{report.END}\n\n"
                    "## Analysis\n\nhand-written\n")
    report.write_report(str(path), block)
    text = path.read_text()
    assert "old table" not in text and block in text
    assert text.startswith("# Performance\n\nintro\n") and text.endswith("hand-written\n")
    # A rerun replaces its own block (the file does not grow).
    report.write_report(str(path), block)
    assert path.read_text() == text


@pytest.mark.slow
def test_cost_breakdown_rows_add_up(data_dir):
    variants = (cost.Variant("np", "gaussian"), cost.Variant("dds", "dds", 2, True))
    dataset = workdir.load_data(cost.variant_config(variants[0], data_dir))
    rows = cost.measure(dataset, repeats=1, num_fused=2, variants=variants, data_dir=data_dir)
    assert [r["variant"] for r in rows] == ["np", "dds"]
    for r in rows:
        for k, v in r.items():
            assert k == "variant" or (math.isfinite(v) and (v > 0 or k.startswith(
                ("network", "backward")))), (k, v)
        assert math.isclose(r["step_over_floor"], r["step_ms"] / r["floor_ms"])
        assert math.isclose(r["backward_ms"], r["step_ms"] - r["forward_ms"] - r["optimiser_ms"])
    # One floor unit for all (the same call on the same shapes): K + 1 of it.
    assert math.isclose(rows[1]["floor_ms"], 3 * rows[0]["floor_ms"])
    table = _markdown_tables(cost.table(rows))[0]
    assert len(table) == 2 + len(rows) and all(len(row) == 13 for row in table)
