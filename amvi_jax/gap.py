"""How close a finished run's posteriors are to the truth, under its own decoder.

For the first test tasks of a run directory (any method), AIS from the prior
(`amvi_jax.reference`, docs/DESIGN.md section 8) gives log Z_ref per task; the run's own weighted
particles give its ELBO and ESS, so `elbo_gap = log Z_ref - ELBO` measures the posterior
approximation alone, and `lmlhd_ref`, the predictive log-likelihood under the reference
posterior, says what exact inference would score with the run's decoder.

On a generated benchmark the Bayes limit (`data.oracle`) splits the method's distance to it,
per task, into its two parts:

    lmlhd_oracle - lmlhd_snis = (lmlhd_oracle - lmlhd_ref)  +  (lmlhd_ref - lmlhd_snis)
         gap_to_oracle        =        model_gap            +      inference_gain

`model_gap` is what the learned prior and decoder lose even under their exact posterior;
`inference_gain` what better inference alone would buy. The three are medians over the tasks,
so they add up only approximately (exactly for a single task). Results are cached in
the run directory (reference.json, posterior_samples.npz) so tables can be rebuilt without
recomputing them.
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from amvi_jax import evaluate, experiment, reference
from amvi_jax import workdir as workdir_lib
from amvi_jax.data import first_n_mask
from amvi_jax.data import oracle as oracle_lib

REFERENCE_FIELDS = ("log_z_ref", "elbo", "elbo_gap", "ess", "lmlhd_ref", "lmlhd_snis",
                    "inference_gain")
ORACLE_FIELDS = ("lmlhd_oracle", "gap_to_oracle", "model_gap")


def reference_fn(model, ais_config: reference.AISConfig):
    """(params, key, x [C, d_x], y [C, d_y], mask [C]) -> AISOutput: AIS from the prior N(0, I).

    params is an argument, never a closed-over constant, of everything this module jits: XLA
    on the CPU (jaxlib 0.10.2) was seen to return wrong values for large batches of a network
    whose weights were compile-time constants (docs/DESIGN.md section 4.3).
    """
    def run_ais(params, k, x, y, mask):
        zeros = jnp.zeros(model.dim_z)
        return reference.ais(k, model.log_target(params, x, y, mask), zeros, zeros + 1.0,
                             ais_config)

    return run_ais


def reference_task_metrics(model, ais_config: reference.AISConfig):
    """Jitted (params, keys [T], x [T, N, d_x], y [T, N, d_y], mask [C])
    -> (log_z_ref [T], lmlhd_ref [T]).

    AIS from the prior targets the posterior given the context (the first C points, `mask`);
    `lmlhd_ref` is the protocol's predictive log-likelihood of all N points under those
    weighted reference particles, logsumexp(log w + log p(D_T | z)) - logsumexp(log w): what
    the model would score with (near) exact inference.
    """
    run_ais = reference_fn(model, ais_config)

    def one(params, k, x, y, mask):
        c = mask.shape[0]
        out = run_ais(params, k, x[:c], y[:c], mask)
        full = jnp.ones((x.shape[0],), x.dtype)
        ll = jax.vmap(lambda z: model.log_likelihood(params, x, y, full, z))(out.z)
        return out.log_z, logsumexp(out.log_w + ll) - logsumexp(out.log_w)

    return jax.jit(jax.vmap(one, (None, 0, 0, 0, None)))


def reference_gap(workdir: str, num_tasks: int, context_sizes, ais_config: reference.AISConfig,
                  seed: int = 0) -> dict:
    """The AIS reference against the run's own posterior on the first `num_tasks` test tasks.

    Per context size n (medians over the tasks): log_z_ref, the method's elbo,
    elbo_gap = log_z_ref - elbo and ess; lmlhd_ref (the predictive log-likelihood under the
    reference posterior of the run's own decoder), the method's own lmlhd_snis on the same
    tasks, and inference_gain = lmlhd_ref - lmlhd_snis (what better inference alone would buy
    on this model). On a generated benchmark also ORACLE_FIELDS: lmlhd_oracle (the Bayes
    limit on the same tasks), gap_to_oracle = lmlhd_oracle - lmlhd_snis and its model part
    model_gap = lmlhd_oracle - lmlhd_ref (medians of per-task differences).
    -> {"context_sizes": {n: {...}}, "average": {...}, "per_task": {n: {lmlhd_ref: [T],
    lmlhd_snis: [T]}}}; cached in workdir/reference.json (recomputed if the cache predates a
    field; a cache with per-task values only gets the oracle added).
    """
    cached = _read_cache(workdir)
    if cached is not None:
        if "per_task" in cached and "oracle" not in cached:
            _add_oracle(cached, workdir_lib.read_config(workdir), workdir)
        return cached
    run = experiment.restore(workdir)
    tasks = run.dataset.test._replace(x=run.dataset.test.x[:num_tasks],
                                      y=run.dataset.test.y[:num_tasks])
    key = jax.random.PRNGKey(seed)
    per_task = evaluate.per_task_metrics(
        evaluate.make_batch_metrics(run.model, run.config.eval.num_particles), run.params,
        jax.random.fold_in(key, 1), tasks.x, tasks.y, context_sizes, num_tasks)
    num_points = tasks.x.shape[1]
    reference_metrics = reference_task_metrics(run.model, ais_config)

    result = {"context_sizes": {}, "num_tasks": int(num_tasks),
              "ais": dict(ais_config._asdict()), "per_task": {}}
    for n in context_sizes:
        mask = first_n_mask(evaluate.context_bucket(n, num_points), n)
        keys = jax.random.split(jax.random.fold_in(key, n), num_tasks)
        ref, lmlhd_ref = (np.asarray(a) for a in reference_metrics(
            run.params, keys, tasks.x, tasks.y, mask))
        own = per_task[int(n)]
        result["context_sizes"][str(n)] = dict(
            log_z_ref=float(np.median(ref)), elbo=float(np.median(own["elbo"])),
            elbo_gap=float(np.median(ref - own["elbo"])), ess=float(np.median(own["ess"])),
            lmlhd_ref=float(np.median(lmlhd_ref)),
            lmlhd_snis=float(np.median(own["lmlhd_snis"])),
            inference_gain=float(np.median(lmlhd_ref - own["lmlhd_snis"])))
        result["per_task"][str(n)] = dict(lmlhd_ref=lmlhd_ref.tolist(),
                                          lmlhd_snis=own["lmlhd_snis"].tolist())
    sizes = result["context_sizes"].values()
    result["average"] = {k: float(np.mean([s[k] for s in sizes])) for k in REFERENCE_FIELDS}
    _add_oracle(result, run.config, workdir, tasks)
    return result


def _read_cache(workdir: str) -> dict | None:
    """workdir/reference.json if it has every REFERENCE_FIELD (else None: to be recomputed)."""
    path = os.path.join(workdir, "reference.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        cached = json.load(f)
    return cached if set(REFERENCE_FIELDS) <= set(cached["average"]) else None


def cached_reference(workdir: str) -> dict | None:
    """The finished `reference_gap` of a run, read without computing anything (None if it has
    not been computed, or its cache predates a field)."""
    cached = _read_cache(workdir)
    return cached if cached is not None and ("per_task" not in cached or "oracle" in cached) \
        else None


def _add_oracle(result: dict, config, workdir: str, tasks=None) -> None:
    """Adds ORACLE_FIELDS to a reference result (when the benchmark has a Bayes limit) and
    writes it to workdir/reference.json."""
    why = oracle_lib.reason_missing(config.data.benchmark)
    result["oracle"] = why or "exact posterior predictive of the generating process"
    if why is None:
        if tasks is None:
            test = workdir_lib.load_data(config).test
            tasks = test._replace(x=test.x[:result["num_tasks"]], y=test.y[:result["num_tasks"]])
        sizes = [int(n) for n in result["per_task"]]
        limit = oracle_lib.per_task(config.data.benchmark, tasks.x, tasks.y, sizes,
                                    config.data.noise_std)
        for n in sizes:
            own = {k: np.asarray(v) for k, v in result["per_task"][str(n)].items()}
            best = limit[n]["lmlhd_oracle"]
            result["context_sizes"][str(n)].update(
                lmlhd_oracle=float(np.median(best)),
                gap_to_oracle=float(np.median(best - own["lmlhd_snis"])),
                model_gap=float(np.median(best - own["lmlhd_ref"])))
        for k in ORACLE_FIELDS:
            result["average"][k] = float(np.mean([s[k] for s in
                                                  result["context_sizes"].values()]))
    with open(os.path.join(workdir, "reference.json"), "w") as f:
        json.dump(result, f, indent=2)


def posterior_samples(workdir: str, num_tasks: int, context_size: int,
                      ais_config: reference.AISConfig, num_particles: int = 1024,
                      seed: int = 0) -> dict:
    """The method's particles z ~ q and AIS reference particles on the first test tasks.

    -> {"z" [T, P, d_z], "log_w" [T, P], "z_ref" [T, P_ref, d_z], "log_w_ref" [T, P_ref]},
    with the model's own decoder for both; cached in workdir/posterior_samples.npz.
    """
    path = os.path.join(workdir, "posterior_samples.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            return dict(f)
    run = experiment.restore(workdir)
    model, params = run.model, run.params
    num_points = run.dataset.test.x.shape[1]
    c = evaluate.context_bucket(context_size, num_points)
    mask = first_n_mask(c, context_size)
    x, y = run.dataset.test.x[:num_tasks, :c], run.dataset.test.y[:num_tasks, :c]
    key_q, key_ref = jax.random.split(jax.random.PRNGKey(seed))
    keys_q = jax.random.split(key_q, num_tasks)
    out = jax.jit(jax.vmap(lambda p, k, xi, yi: model.sample(p, k, xi, yi, mask, num_particles),
                           (None, 0, 0, 0)))(params, keys_q, x, y)
    ref = jax.jit(jax.vmap(reference_fn(model, ais_config), (None, 0, 0, 0, None)))(
        params, jax.random.split(key_ref, num_tasks), x, y, mask)
    result = dict(z=np.asarray(out.z), log_w=np.asarray(out.log_w), z_ref=np.asarray(ref.z),
                  log_w_ref=np.asarray(ref.log_w), context_size=np.asarray(context_size))
    np.savez(path, **result)
    return result
