"""Evaluation protocol of Volpp et al. (2023), docs/DESIGN.md section 5.

For each context size n the context is the first n points of a task and the target is ALL of
its points (context included). From S weighted particles (z_s, log w_s) given the context:

    lmlhd_snis = logsumexp_s(log w_s + log p(D_T | z_s)) - logsumexp_s(log w_s)
    lmlhd_mc   = logsumexp_s(log p(D_T | z_s)) - log S       (unweighted, Volpp's naive MC)

both summed over the target points; we report medians over tasks (and per point: / N), the
context ELBO mean_s log w_s, the MSE of the SNIS predictive mean, the effective sample size and
the `spread` of the posterior's functions (the weighted variance of the particles' predicted
means, averaged over points: how diverse its completions are).
`lmlhd_snis_disjoint` is lmlhd_snis over the N - n targets outside the context.

For a generated benchmark the Bayes limit sits beside every context size (`with_oracle`,
`amvi_jax.data.oracle`): `lmlhd_oracle_median` and `gap_to_oracle` = lmlhd_oracle_median -
lmlhd_snis_median (the difference of the two medians, so that a table's "to the limit" column
is the limit's row minus the method's); the same for the disjoint targets.
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from amvi_jax import sharding
from amvi_jax.data import first_n_mask
from amvi_jax.data import oracle as oracle_lib
from amvi_jax.types import log_normal_diag


def task_metrics(model, params, key, x, y, mask, num_particles: int) -> dict:
    """Metrics of ONE task. x [N, d_x], y [N, d_y], mask [C] with C <= N -> dict of scalars.

    The context lies in the first C points (the protocol takes the first n), so the sampler's
    target only touches x[:C]; the target set is all N points.
    """
    num_context = mask.shape[0]
    out = model.sample(params, key, x[:num_context], y[:num_context], mask, num_particles)

    outside = jnp.arange(x.shape[0]) >= jnp.sum(mask)  # targets that are not context

    def per_particle(z):
        mean, std = model.predict(params, x, z)
        ll_points = log_normal_diag(y, mean, std**2)  # [N]
        return jnp.sum(ll_points), jnp.sum(jnp.where(outside, ll_points, 0.0)), mean

    ll, ll_out, means = jax.vmap(per_particle)(out.z)  # [S], [S], [S, N, d_y]
    log_norm = logsumexp(out.log_w)
    w = jnp.exp(out.log_w - log_norm)  # self-normalised weights [S]
    pred_mean = jnp.einsum("s,snd->nd", w, means)
    return dict(
        # How much the posterior's functions disagree: the weighted variance of the particles'
        # predicted means, averaged over points (0 for a posterior that is one point).
        spread=jnp.mean(jnp.einsum("s,snd->nd", w, (means - pred_mean) ** 2)),
        lmlhd_snis=logsumexp(out.log_w + ll) - log_norm,
        lmlhd_snis_disjoint=logsumexp(out.log_w + ll_out) - log_norm,
        lmlhd_mc=logsumexp(ll) - jnp.log(num_particles),
        elbo=jnp.mean(out.log_w),
        log_z_hat=log_norm - jnp.log(num_particles),
        mse=jnp.mean((pred_mean - y) ** 2),
        ess=1.0 / jnp.sum(w**2),
    )


def point_metrics(model, params, key, x, y, num_context, num_target, num_particles: int) -> dict:
    """The NP literature's per-point log-likelihoods of ONE task (`literature`).

    x [P, d_x], y [P, d_y] in random point order; the context is the first `num_context` points,
    the targets the next `num_target` (disjoint). Each point's predictive is its own marginal,
    log sum_s w_s p(y_i | x_i, z_s) with self-normalised weights, as the literature's
    log-mean-exp over samples of z; -> mean over the context points and over the targets.
    """
    index = jnp.arange(x.shape[0])
    mask = (index < num_context).astype(jnp.float32)
    out = model.sample(params, key, x, y, mask, num_particles)

    def per_particle(z):
        mean, std = model.predict(params, x, z)
        return log_normal_diag(y, mean, std**2)  # [P]

    ll = jax.vmap(per_particle)(out.z)  # [S, P]
    point_ll = logsumexp(out.log_w[:, None] + ll, axis=0) - logsumexp(out.log_w)  # [P]
    target = (index >= num_context) & (index < num_context + num_target)
    return dict(ctx_ll=jnp.sum(mask * point_ll) / num_context,
                tar_ll=jnp.sum(jnp.where(target, point_ll, 0.0)) / num_target)


def literature(model, params, key, tasks, num_particles: int, task_chunk: int,
               max_points: int = 200, min_points: int = 3, seed: int = 0) -> dict:
    """Image completion as the NP literature evaluates it (BNP, Lee et al. 2020; TNP; LBANP).

    Per test task: n_c ~ U{3, ..., max_points - 4} context points and n_t ~ U{3, ...,
    max_points - 1 - n_c} disjoint targets (torch.randint's bounds in their code), drawn from
    the task's random point order; the mean per-point log-likelihood of the context and of the
    targets, each averaged over tasks (mean, not median, as they report) -> {"ctx_ll": mean,
    "ctx_ll_se", "tar_ll", "tar_ll_se", ...}. Sizes come from `seed`, not the model's key, so
    every method sees the same contexts.
    """
    num_tasks, num_points = tasks.x.shape[:2]
    if num_points < max_points:
        raise ValueError(f"the literature protocol takes {max_points} points per test task; "
                         f"these have {num_points} (config.data.num_test_points)")
    rng = np.random.default_rng(seed)
    n_c = rng.integers(min_points, max_points - min_points, size=num_tasks)
    n_t = rng.integers(min_points, max_points - n_c)
    batch = jax.jit(lambda p, k, x, y, c, t: jax.vmap(
        lambda kk, xx, yy, cc, tt: point_metrics(model, p, kk, xx, yy, cc, tt, num_particles)
    )(jax.random.split(k, x.shape[0]), x, y, c, t))
    per_task = _in_chunks(
        lambda c, x, y, nc, nt: batch(params, jax.random.fold_in(key, c), x, y, nc, nt),
        (tasks.x[:, :max_points], tasks.y[:, :max_points], n_c, n_t), task_chunk)
    out = {"max_points": max_points, "num_tasks": int(num_tasks),
           "num_particles": int(num_particles)}
    for k, v in per_task.items():
        out[k], out[k + "_se"] = float(np.mean(v)), float(np.std(v) / np.sqrt(len(v)))
    return out


def _in_chunks(run, arrays, task_chunk: int) -> dict:
    """run(c, *chunk) over chunks c of `task_chunk` tasks of `arrays` (task axis first) ->
    {metric: np.ndarray [T]}. The last chunk is padded with copies of its last task, so every
    call has one shape (one compilation), and the copies' results are dropped."""
    arrays = [np.asarray(a) for a in arrays]  # once: a device array would copy per chunk
    num_tasks = arrays[0].shape[0]
    chunks = []
    for c, start in enumerate(range(0, num_tasks, task_chunk)):
        stop = min(start + task_chunk, num_tasks)
        take = np.minimum(np.arange(start, start + task_chunk), stop - 1)
        m = run(c, *(a[take] for a in arrays))
        chunks.append({k: np.asarray(v)[:stop - start] for k, v in m.items()})
    return {k: np.concatenate([ch[k] for ch in chunks]) for k in chunks[0]}


def make_batch_metrics(model, num_particles: int, mesh=None):
    """Jitted (params, key, x [B, N, d_x], y [B, N, d_y], mask [C]) -> dict of [B] arrays.

    The context mask is an argument: one compilation serves every context size with the same C.
    With a `mesh`, the tasks of a chunk are split over its devices.
    """
    def batch(params, key, x, y, mask):
        keys = jax.random.split(key, x.shape[0])
        if mesh is not None:
            keys, x, y = sharding.shard_tasks((keys, x, y), mesh)
        return jax.vmap(lambda k, xi, yi: task_metrics(
            model, params, k, xi, yi, mask, num_particles))(keys, x, y)

    return jax.jit(batch)


def context_bucket(n: int, num_points: int) -> int:
    """Points the sampler's target sees for a context of the first n: the next power of two.

    The target's gradient dominates the cost of a diffusion, so it should touch few padded
    points; powers of two bound the number of compilations (one per bucket) at log2(N) + 1.
    """
    return min(1 << max(int(n) - 1, 0).bit_length(), num_points)


def per_task_metrics(batch_metrics, params, key, x, y, context_sizes, task_chunk: int,
                     context_width: int | None = None) -> dict:
    """-> {n: {metric: np.ndarray [T]}} for every context size n, in chunks of tasks.

    The target of context size n sees the first context_bucket(n) points (one compilation per
    bucket), or the first `context_width` points for every n (one compilation in all: cheaper
    when compiling the sampler costs more than running it, as for GMM-NP's per-task fit).
    """
    num_points = x.shape[1]
    results = {}
    for n in context_sizes:
        width = context_bucket(n, num_points) if context_width is None else context_width
        mask = first_n_mask(width, n)
        key_n = jax.random.fold_in(key, n)
        results[int(n)] = _in_chunks(
            lambda c, xs, ys, k=key_n, m=mask: batch_metrics(
                params, jax.random.fold_in(k, c), xs, ys, m), (x, y), task_chunk)
    return results


def summarize(per_task: dict, num_points: int) -> dict:
    """Medians over tasks per context size, per-point versions, and the average over sizes."""
    summary = {"context_sizes": {}}
    for n, m in per_task.items():
        s = {f"{k}_median": float(np.median(v)) for k, v in m.items()}
        s["lmlhd_snis_median_per_point"] = s["lmlhd_snis_median"] / num_points
        s["lmlhd_mc_median_per_point"] = s["lmlhd_mc_median"] / num_points
        summary["context_sizes"][str(n)] = s
    keys = next(iter(summary["context_sizes"].values())).keys()
    summary["average"] = {k: float(np.mean([s[k] for s in summary["context_sizes"].values()]))
                          for k in keys}
    return summary


def evaluate(model, params, key, tasks, context_sizes, num_particles: int, task_chunk: int,
             batch_metrics=None, mesh=None, context_width: int | None = None) -> dict:
    """Full protocol on a TaskSet (x [T, N, d_x], y [T, N, d_y]) -> summary dict.

    Pass a `batch_metrics` from `make_batch_metrics` to reuse its compilation across calls;
    `context_width`: see `per_task_metrics`.
    """
    if batch_metrics is None:
        batch_metrics = make_batch_metrics(model, num_particles, mesh)
    start = time.perf_counter()
    per_task = per_task_metrics(batch_metrics, params, key, tasks.x, tasks.y, context_sizes,
                                task_chunk, context_width)
    summary = summarize(per_task, tasks.x.shape[1])
    summary["num_tasks"] = int(tasks.x.shape[0])
    summary["num_particles"] = int(num_particles)
    summary["wall_time_s"] = time.perf_counter() - start
    return summary


def oracle_summary(benchmark: str, noise_std: float, tasks, context_sizes) -> dict:
    """The Bayes limit of `tasks` per context size, {str(n): {lmlhd_oracle_median, ...}}, or
    {"none": why} for a benchmark without a known process (`data.oracle`)."""
    why = oracle_lib.reason_missing(benchmark)
    if why is not None:
        return {"none": why}
    per_task = oracle_lib.per_task(benchmark, tasks.x, tasks.y, context_sizes, noise_std)
    return oracle_lib.summarize(per_task, tasks.x.shape[1])


def with_oracle(summary: dict, oracle: dict) -> dict:
    """`summary` (of `summarize`) with the limit and the method's distance to it beside every
    context size and in the average; `summary["oracle"]` says why when there is none."""
    if "none" in oracle:
        summary["oracle"] = f"none: {oracle['none']}"
        return summary
    sizes = summary["context_sizes"]
    for n, s in sizes.items():
        s.update(oracle[n])
        s["gap_to_oracle"] = s["lmlhd_oracle_median"] - s["lmlhd_snis_median"]
        if "lmlhd_snis_disjoint_median" in s:  # absent from runs evaluated before it existed
            s["gap_to_oracle_disjoint"] = (s["lmlhd_oracle_disjoint_median"]
                                           - s["lmlhd_snis_disjoint_median"])
    # Only the added fields: the method's own averages stay as `summarize` wrote them.
    added = set(next(iter(oracle.values()))) | {"gap_to_oracle", "gap_to_oracle_disjoint"}
    for k in added & set(next(iter(sizes.values()))):
        summary["average"][k] = float(np.mean([s[k] for s in sizes.values()]))
    summary["oracle"] = "exact posterior predictive of the generating process"
    return summary


def _median_seconds(fn, repeats: int) -> float:
    jax.block_until_ready(fn())  # compile and warm up outside the timed runs
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def measure_test_time(model, params, key, tasks, context_size: int, num_particles: int,
                      task_chunk: int, repeats: int = 3) -> dict:
    """Seconds to turn contexts into `num_particles` weighted particles (jitted, warm).

    `per_task_s`: one new task alone; `test_split_s`: every task of `tasks`, in jitted chunks
    of `task_chunk` (one timed run after a warm-up: it is long). `per_task_s` is the median
    of `repeats` runs after a warm-up run.
    """
    num_tasks, num_points = tasks.x.shape[:2]
    num_context = context_bucket(context_size, num_points)
    mask = first_n_mask(num_context, context_size)
    x, y = tasks.x[:, :num_context], tasks.y[:, :num_context]

    def particles(p, k, xi, yi):
        out = model.sample(p, k, xi, yi, mask, num_particles)
        return out.z, out.log_w

    one = jax.jit(particles)
    many = jax.jit(lambda p, k, xs, ys: jax.vmap(particles, (None, 0, 0, 0))(
        p, jax.random.split(k, xs.shape[0]), xs, ys))
    pad = -num_tasks % task_chunk
    xs = np.concatenate([x, np.repeat(x[-1:], pad, 0)]) if pad else x
    ys = np.concatenate([y, np.repeat(y[-1:], pad, 0)]) if pad else y

    def whole_split():
        return [many(params, jax.random.fold_in(key, c), xs[s:s + task_chunk],
                     ys[s:s + task_chunk])
                for c, s in enumerate(range(0, xs.shape[0], task_chunk))]

    return dict(
        context_size=int(context_size), num_particles=int(num_particles),
        num_tasks=int(num_tasks),
        per_task_s=_median_seconds(lambda: one(params, key, x[0], y[0]), repeats),
        test_split_s=_median_seconds(whole_split, 1),
    )
