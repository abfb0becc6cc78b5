"""An ablation table across runner output directories, paired by seed.

    python -m experiments.ablation --variants=elbo=runs/abl_elbo4,iw=runs/abl_iw16 \
        --methods=np,dds --benchmarks=sinusoid1d,gp_rbf --baseline=elbo --output=runs/abl.md

Each variant is one `experiments.benchmark` output directory (the same methods, benchmarks and
seeds run with other `--set` options). Per (benchmark, method, variant): the median
`lmlhd_snis` averaged over context sizes (mean ± s.e. over seeds), its gain over the baseline
variant's cell of the same method and seed, its gain over the same variant's np of the same
seed, ELBO gap, ESS and inference gain on the reference tasks, and `lmlhd_snis` at the
smallest and largest context size. Nothing is trained; a missing reference is computed (and
cached in the cell) as the runner does.
"""

import os

from absl import app, flags
from ml_collections import config_flags

from experiments.runner import cells, report

_VARIANTS = flags.DEFINE_list("variants", None, "label=output_dir pairs, baseline first.")
_METHODS = flags.DEFINE_list("methods", ["np", "dds"], "Cell names (configs/ names).")
_BENCHMARKS = flags.DEFINE_list("benchmarks", ["sinusoid1d"], "Benchmarks.")
_SEEDS = flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds to pair on.")
_BASELINE = flags.DEFINE_string("baseline", None, "Variant label to pair against (default: "
                                "the first).")
_OUTPUT = flags.DEFINE_string("output", "", "Also write the Markdown table here.")
_BY_CONTEXT = flags.DEFINE_bool("by_context", False, "Also a table of lmlhd_snis at every "
                                "context size (mean ± s.e. over seeds).")
_PRESET = config_flags.DEFINE_config_file("preset", "configs/presets.py:cpu",
                                          "The runner preset (reference settings).")


def parse_variants(items: list[str]) -> dict[str, str]:
    variants = {}
    for item in items:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            raise ValueError(f"--variants entry {item!r}: expected label=output_dir")
        if not os.path.isdir(path):
            raise ValueError(f"--variants entry {item!r}: no such directory {path!r}")
        variants[label] = path
    return variants


def _record(path: str, bench: str, method: str, seed: int, preset) -> dict | None:
    """A finished cell's record, its reference computed first if an older run lacks it."""
    workdir = os.path.join(path, bench, method, f"seed{seed}")
    if not os.path.exists(os.path.join(workdir, "eval.json")):
        return None
    cells.cell_reference(workdir, preset, seed)
    return report.record(path, bench, method, seed)


def _score(rec) -> float:
    return rec["eval"]["average"]["lmlhd_snis_median"]


def _paired(recs: dict, base: dict) -> str:
    """Mean ± s.e. over the common seeds of recs[s] - base[s], signed."""
    common = sorted(set(recs) & set(base))
    if not common:
        return "–"
    text = report.fmt(report.mean_se([_score(recs[s]) - _score(base[s]) for s in common]))
    return text if text.startswith("-") else "+" + text


def rows(variants: dict[str, str], methods, benchmarks, seeds, baseline: str, preset):
    """-> list of Markdown table lines (header included)."""
    lines = ["| benchmark | method | variant | seeds | lmlhd_snis | vs " + baseline +
             " (paired) | vs np (paired) | ELBO gap | ESS | inference gain | n = min / max |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]

    def cells(path, bench, method):
        found = {s: _record(path, bench, method, s, preset) for s in seeds}
        return {s: r for s, r in found.items() if r is not None}

    for bench in benchmarks:
        for method in methods:
            base = cells(variants[baseline], bench, method)
            for label, path in variants.items():
                recs = cells(path, bench, method)
                if not recs:
                    continue
                refs = [r["reference"]["average"] for r in recs.values()]
                ns = sorted(next(iter(recs.values()))["eval"]["context_sizes"], key=int)
                by_n = [report.fmt(report.mean_se(
                    [r["eval"]["context_sizes"][n]["lmlhd_snis_median"] for r in recs.values()]))
                    for n in (ns[0], ns[-1])]
                lines.append("| " + " | ".join([
                    bench, method, label, str(len(recs)),
                    report.fmt(report.mean_se([_score(r) for r in recs.values()])),
                    "–" if label == baseline else _paired(recs, base),
                    "–" if method == "np" else _paired(recs, cells(path, bench, "np")),
                    report.fmt(report.mean_se([x["elbo_gap"] for x in refs])),
                    report.fmt(report.mean_se([x["ess"] for x in refs]), 0),
                    report.fmt(report.mean_se([x["inference_gain"] for x in refs])),
                    " / ".join(by_n)]) + " |")
    return lines


def context_rows(variants: dict[str, str], methods, benchmarks, seeds, preset):
    """-> Markdown lines: lmlhd_snis per context size for every (benchmark, method, variant)."""
    lines = []
    for bench in benchmarks:
        for method in methods:
            for label, path in variants.items():
                recs = [r for r in (_record(path, bench, method, s, preset) for s in seeds)
                        if r is not None]
                if not recs:
                    continue
                ns = sorted(recs[0]["eval"]["context_sizes"], key=int)
                if not lines:
                    lines = ["| benchmark | method | variant | " + " | ".join(
                        f"n = {n}" for n in ns) + " |", "|---" * (3 + len(ns)) + "|"]
                lines.append("| " + " | ".join([bench, method, label] + [report.fmt(
                    report.mean_se([r["eval"]["context_sizes"][n]["lmlhd_snis_median"]
                                    for r in recs])) for n in ns]) + " |")
    return lines


def main(argv):
    del argv
    variants = parse_variants(_VARIANTS.value or [])
    if not variants:
        raise app.UsageError("--variants is required")
    baseline = _BASELINE.value or next(iter(variants))
    if baseline not in variants:
        raise app.UsageError(f"--baseline={baseline!r}: valid: {', '.join(variants)}")
    seeds = [int(s) for s in _SEEDS.value]
    lines = rows(variants, _METHODS.value, _BENCHMARKS.value, seeds, baseline, _PRESET.value)
    if _BY_CONTEXT.value:
        lines += [""] + context_rows(variants, _METHODS.value, _BENCHMARKS.value, seeds,
                                     _PRESET.value)
    table = "\n".join(lines) + "\n"
    print(table)
    if _OUTPUT.value:
        with open(_OUTPUT.value, "w") as f:
            f.write(table)


if __name__ == "__main__":
    app.run(main)
