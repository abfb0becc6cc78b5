"""What a run keeps in its workdir: config.json, metrics.jsonl, and the data it was trained on."""

import json
import os

import ml_collections
import numpy as np

from amvi_jax import data


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def write_config(workdir: str, config) -> None:
    write_json(os.path.join(workdir, "config.json"), json.loads(config.to_json_best_effort()))


# Fields added to the configs after runs were first written, with what a run without them did
# (its code's behaviour then, which is not always today's default: such runs trained on the
# ELBO). `read_config` fills them in, so that the library reads every field directly and a
# field missing from a config is an error naming it.
ADDED_LATER = {
    "model": dict(grid_shape=(), heteroscedastic_std=False, x_frequencies=0,
                  q0_covariance="diag", q0_components=1, tie_prior=False),
    "train": dict(objective="elbo", proposal_objective="", lr_schedule="constant",
                  lr_final_fraction=0.0, min_context_size=1, time_budget_s=0.0,
                  validate_every_s=0.0, validate_at_start=False, steps_per_call=1,
                  diffusion_trains_decoder=True),
    "eval": dict(refine_temperatures=0, refine_transition="mala", refine_pilots=256,
                 refine_moves=0),
}


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """The config.json a run wrote into its workdir, with the fields it predates
    (`ADDED_LATER`) filled in."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{workdir!r} is not a run directory: it has no config.json")
    with open(path) as f:
        config = json.load(f)
    for section, fields in ADDED_LATER.items():
        if section in config:
            config[section] = {**fields, **config[section]}
    return ml_collections.ConfigDict(config)


def trim_metrics(path: str, last_step: int) -> None:
    """Drops metric lines past the restored step, so a resumed run's log has no duplicates."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= last_step]
    with open(path, "w") as f:
        f.writelines(lines)


def read_metrics(path: str) -> list[dict]:
    """The lines of a metrics.jsonl ([] if there is no such file)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(ln) for ln in f if ln.strip()]


def last_time_s(path: str) -> float:
    """The largest `time_s` in a metrics.jsonl (0 if there is none): where a resumed run's
    clock continues."""
    return float(max((ln.get("time_s", 0.0) for ln in read_metrics(path)), default=0.0))


def validation_curve(path: str):
    """(time_s [V], val_lmlhd_snis [V]) float64 of a metrics.jsonl's validation lines that
    carry a time (empty arrays if none)."""
    points = [(ln["time_s"], ln["val_lmlhd_snis"]) for ln in read_metrics(path)
              if "val_lmlhd_snis" in ln and "time_s" in ln]
    t, v = np.asarray(points, np.float64).reshape(-1, 2).T
    return t, v


def load_data(config) -> data.MetaDataset:
    """The meta-dataset `config.data` describes (an empty data_dir means the default)."""
    data_config = ml_collections.ConfigDict(config.data.to_dict())
    if not data_config.data_dir:
        data_config.data_dir = None
    return data.load_benchmark(data_config)
