"""experiments/perf.py: the --quick report is well-formed. No timing assertions (shared CPUs)."""

import dataclasses
import math

from experiments import perf


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


def test_quick_report_is_well_formed(data_dir, tmp_path):
    settings = dataclasses.replace(perf.QUICK, data_dir=data_dir)
    results = perf.run_all(settings)
    block = perf.report(results, "python -m experiments.perf --quick")

    tables = _markdown_tables(block)
    assert len(tables) == 5  # overhead, throughput, memory + compile, evaluation, goals
    for table in tables:
        header, separator, *rows = table
        assert rows, table
        assert all(set(c) == {"-"} for c in separator), separator
        assert all(len(row) == len(header) for row in [separator, *rows]), table
        assert all(cell for row in table for cell in row), table
    overhead, throughput, memory, evaluation, goals = tables
    assert [r[0] for r in overhead[2:]] == list(settings.overhead_samplers)
    assert len(memory) - 2 == 1 + 2 * len(settings.memory_steps)  # Gaussian + K x remat
    assert len(throughput) - 2 == 1 + 2 * len(settings.train_steps)
    assert [r[0] for r in evaluation[2:]] == ["gaussian", settings.eval_sampler]
    for row in overhead[2:] + throughput[2:] + evaluation[2:]:
        for cell in row[3:6]:
            assert math.isfinite(float(cell)) and float(cell) >= 0, row
    assert {r[-1] for r in goals[2:]} <= {"met", "MISSED", "—"}

    # Static memory of the training step: remat never needs more than no remat.
    k = max(settings.memory_steps)
    by = {(r["num_steps"], r["remat"]): r for r in results["steps"]}
    for field in ("temp_bytes", "total_bytes"):
        assert 0 < by[(k, True)][field] <= by[(k, False)][field], field

    # The generated block replaces the old one; hand-written text around it survives.
    path = tmp_path / "PERFORMANCE.md"
    path.write_text(f"# Performance\n\nintro\n\n{perf.BEGIN}\nold table\n{perf.END}\n\n"
                    "## Analysis\n\nhand-written\n")
    perf.write_report(str(path), block)
    text = path.read_text()
    assert "old table" not in text and block in text
    assert text.startswith("# Performance\n\nintro\n") and text.endswith("hand-written\n")
