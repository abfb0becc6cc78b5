"""Numbers pinned: the `tiny` preset's losses, eval.json and runner tables are bit-identical to
the ones recorded in tests/golden/tiny_runner.json.

A refactor that says "behaviour unchanged" is checked here. A change that means to move the
numbers rewrites the file, and its commit says why:

    AMVI_WRITE_GOLDEN=1 python -m pytest tests/test_golden.py

Timings are left out (they change from run to run); everything else numeric is compared
exactly. The file was recorded on the 2-core x86-64 CPU that CI runs on, with the suite's XLA
flags (tests/conftest.py). XLA's CPU thread pool follows the cores the process may use, and
with it the order of float32 reductions: pinned to one core (`taskset -c 0`), 121 of the 505
numbers move in their last bits (measured on the commit that recorded the file), so compare
on the machine the file was recorded on.
"""

import json
import math
import os
import re

import pytest

from configs import presets
from experiments import runner

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "tiny_runner.json")
_TIMING = re.compile(r"time|_s$|steps_per_sec|wall|per_task|split_s|compile")


def _numbers(tree, prefix="") -> dict:
    """Every numeric leaf of a JSON tree by its path, timings left out."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            if not _TIMING.search(str(k)):
                out.update(_numbers(v, f"{prefix}/{k}"))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out.update(_numbers(v, f"{prefix}[{i}]"))
    elif isinstance(tree, bool) or tree is None or isinstance(tree, str):
        pass
    elif isinstance(tree, int | float):
        out[prefix] = "nan" if isinstance(tree, float) and math.isnan(tree) else tree
    return out


def _read_json_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _run_numbers(out: str) -> dict:
    numbers = {}
    for folder, _, files in sorted(os.walk(out)):
        rel = os.path.relpath(folder, out)
        for name in sorted(files):
            path = os.path.join(folder, name)
            if name in ("eval.json", "reference.json"):
                with open(path) as f:
                    numbers.update(_numbers(json.load(f), f"{rel}/{name}"))
            elif name == "metrics.jsonl":
                numbers.update(_numbers(_read_json_lines(path), f"{rel}/{name}"))
    with open(os.path.join(out, "results.json")) as f:
        numbers.update(_numbers(json.load(f)["rows"], "results.json/rows"))
    return numbers


@pytest.mark.slow
def test_tiny_preset_numbers_are_the_recorded_ones(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("AMVI_DATA_DIR", data_dir)
    out = str(tmp_path / "bench")
    runner.run(out, ["np", "dds", "gmm"], ["sinusoid1d"], [0], presets.get_config("tiny"),
               sweep_methods=())
    numbers = _run_numbers(out)
    if os.environ.get("AMVI_WRITE_GOLDEN"):
        os.makedirs(os.path.dirname(GOLDEN), exist_ok=True)
        with open(GOLDEN, "w") as f:
            json.dump(numbers, f, indent=0, sort_keys=True)
        pytest.skip(f"wrote {GOLDEN}")
    with open(GOLDEN) as f:
        golden = json.load(f)
    assert sorted(numbers) == sorted(golden), "the runs' files hold other fields than recorded"
    changed = [f"{k}: {golden[k]} -> {numbers[k]}" for k in sorted(golden)
               if numbers[k] != golden[k]]
    assert not changed, f"{len(changed)} of {len(golden)} numbers moved:\n" + "\n".join(
        changed[:20])
