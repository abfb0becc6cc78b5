"""The performance goals and whether a set of measurements meets them."""

# A K-step run should cost little more than its K target-score evaluations: ratio at most.
OVERHEAD_GOALS = {"ula": 1.5, "ldvi": 2.5}
MEMORY_GROWTH_GOAL = 2.0   # remat on: total bytes at the largest K / at the smallest K
COMPILE_GROWTH_GOAL = 1.5  # compile seconds at the largest K / at the smallest K (noise margin)


def overhead_met(row: dict) -> bool | None:
    """An overhead row against its sampler's goal (None: no goal), judged on the stricter of the
    two floors (lone score calls and scores in one loop)."""
    goal = OVERHEAD_GOALS.get(row["sampler"])
    return None if goal is None else max(row["ratio"], row["ratio_loop"]) <= goal


def check(overhead: list[dict], steps: list[dict]) -> list[dict]:
    """Rows (goal, target, measured, met) for the overhead, memory and compile goals, from the
    rows of `sampler_overhead.measure` and `training_step.measure`; met is None if n/a."""
    out = []
    for row in overhead:
        if row["sampler"] in OVERHEAD_GOALS:
            out.append(dict(goal=f"{row['sampler'].upper()} overhead ratio "
                                 f"(K = {row['num_steps']})",
                            target=f"<= {OVERHEAD_GOALS[row['sampler']]}",
                            measured=f"{row['ratio']:.2f} (vs looped scores: "
                                     f"{row['ratio_loop']:.2f})",
                            met=overhead_met(row)))
    diffusion = [r for r in steps if r["num_steps"] > 0]
    k_min = min(r["num_steps"] for r in diffusion)
    k_max = max(r["num_steps"] for r in diffusion)
    by = {(r["num_steps"], r["remat"]): r for r in diffusion}
    span = f"K = {k_min} -> {k_max}"
    if k_max == k_min:
        out.append(dict(goal="memory with remat grows mildly in K", target="two K values",
                        measured="n/a (one K)", met=None))
        out.append(dict(goal="compile time flat in K", target="two K values",
                        measured="n/a (one K)", met=None))
        return out
    lo, hi = by[(k_min, True)], by[(k_max, True)]
    growth = hi["total_bytes"] / lo["total_bytes"]
    per_step = (hi["total_bytes"] - lo["total_bytes"]) / (k_max - k_min)
    off = by[(k_max, False)]["total_bytes"] / by[(k_min, False)]["total_bytes"]
    out.append(dict(goal=f"memory with remat grows mildly in K ({span})",
                    target=f"<= {MEMORY_GROWTH_GOAL:g}x",
                    measured=f"{growth:.2f}x, {per_step / 1024:.1f} KiB per step "
                             f"(remat off: {off:.1f}x)",
                    met=growth <= MEMORY_GROWTH_GOAL))
    for remat in (False, True):
        growth = by[(k_max, remat)]["compile_s"] / by[(k_min, remat)]["compile_s"]
        out.append(dict(goal=f"compile time flat in K, remat {'on' if remat else 'off'} "
                             f"({span})",
                        target=f"<= {COMPILE_GROWTH_GOAL:g}x", measured=f"{growth:.2f}x",
                        met=growth <= COMPILE_GROWTH_GOAL))
    return out
