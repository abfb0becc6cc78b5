"""Figures a run leaves in its workdir (matplotlib, Agg backend: no screen needed)."""

import functools
import os

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from amvi_jax import workdir as workdir_lib  # noqa: E402
from amvi_jax.data import first_n_mask, images  # noqa: E402

_PLOT_PARTICLES = 256
_SAMPLED_FUNCTIONS = 5


def weighted_predictive(model, params, key, x, y, mask, x_query, num_particles=_PLOT_PARTICLES):
    """Posterior predictive at x_query [M, d_x] given the context of ONE task.

    -> (mean [M, d_y], std [M, d_y] incl. observation noise, functions [F, M, d_y] drawn by
    resampling the weighted particles, particles z [P, d_z], normalised weights [P]).
    """
    out = model.sample(params, key, x, y, mask, num_particles)
    w = jax.nn.softmax(out.log_w)
    means, stds = jax.vmap(lambda z: model.predict(params, x_query, z))(out.z)
    mean = jnp.einsum("p,pmd->md", w, means)
    var = jnp.einsum("p,pmd->md", w, (means - mean) ** 2) + jnp.mean(stds**2, axis=0)
    idx = jax.random.choice(jax.random.fold_in(key, 1), num_particles, (_SAMPLED_FUNCTIONS,),
                            p=w)
    return mean, jnp.sqrt(var), means[idx], out.z, w


def plot_predictions(model, params, key, tasks, context_sizes, num_tasks: int, path: str,
                     image_shape=None):
    """1-D inputs: mean +- 2 std and sampled functions per context size. Images (`image_shape`
    (H, W): the points are pixels): the task's known pixels, then the predicted mean of every
    pixel per context size with the context pixels marked; other 2-D inputs: the mean at the
    task's points."""
    x_all, y_all = np.asarray(tasks.x[:num_tasks]), np.asarray(tasks.y[:num_tasks])
    num_points, dim_x = x_all.shape[1], x_all.shape[2]
    shade = value_range(y_all)
    lead = 1 if image_shape else 0
    columns = lead + len(context_sizes)
    fig, axes = plt.subplots(num_tasks, columns, figsize=(3.2 * columns, 2.4 * num_tasks),
                             squeeze=False)
    predictive = jax.jit(functools.partial(weighted_predictive, model))
    for t in range(num_tasks):
        x, y = x_all[t], y_all[t]
        if dim_x == 1:
            lo, hi = x.min(), x.max()
            pad = 0.1 * (hi - lo)
            query = np.linspace(lo - pad, hi + pad, 200, dtype=np.float32)[:, None]
        elif image_shape:
            query = images.pixel_coordinates(*image_shape)
            _grid_image(axes[t, 0], image_shape, x, y, shade,
                        title="known pixels" if t == 0 else "")
        else:
            query = x
        for j, n in enumerate(context_sizes):
            ax = axes[t, lead + j]
            mask = first_n_mask(num_points, n)
            mean, std, funcs, _, _ = predictive(params, jax.random.fold_in(key, 100 * t + j),
                                                x, y, mask, query)
            mean, std, funcs = np.asarray(mean), np.asarray(std), np.asarray(funcs)
            if dim_x == 1:
                q = query[:, 0]
                ax.fill_between(q, mean[:, 0] - 2 * std[:, 0], mean[:, 0] + 2 * std[:, 0],
                                alpha=0.25, color="C0", label="mean ± 2 std")
                ax.plot(q, funcs[..., 0].T, color="C0", lw=0.6, alpha=0.6)
                ax.plot(q, mean[:, 0], color="C0", lw=1.5)
                ax.scatter(x[:, 0], y[:, 0], s=6, color="0.6", label="target")
                ax.scatter(x[:n, 0], y[:n, 0], s=18, color="C3", label="context")
            elif image_shape:
                _grid_image(ax, image_shape, query, mean, shade, context_x=x[:n])
            else:
                _image(ax, x, mean[:, 0], x[:n], shade)
            if t == 0:
                ax.set_title(f"n = {n}")
    if dim_x == 1:
        axes[0, 0].legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_completions(rows, key, tasks, context_sizes, task_ids, path: str, image_shape,
                     num_samples: int = 3):
    """Image completion side by side: for each task of `task_ids` and context size, the
    context pixels on a neutral grey, then for each (label, model, params) of `rows` its
    predictive mean and `num_samples` posterior samples (the decoder's mean under z drawn from
    its weighted particles). Every panel shares the data's grey scale."""
    shade = value_range(tasks.y)
    num_points = tasks.x.shape[1]
    query = images.pixel_coordinates(*image_shape)
    columns = 1 + len(rows) * (1 + num_samples)
    lines = len(task_ids) * len(context_sizes)
    fig, axes = plt.subplots(lines, columns, figsize=(1.1 * columns, 1.15 * lines),
                             squeeze=False)
    predictive = [jax.jit(functools.partial(weighted_predictive, model)) for _, model, _ in rows]
    for i, t in enumerate(task_ids):
        x, y = np.asarray(tasks.x[t]), np.asarray(tasks.y[t])
        for j, n in enumerate(context_sizes):
            line = axes[i * len(context_sizes) + j]
            _context_image(line[0], image_shape, x[:n], y[:n], shade)
            line[0].set_ylabel(f"n = {n}", fontsize=7)
            mask = first_n_mask(num_points, n)
            for r, ((label, _, params), fn) in enumerate(zip(rows, predictive, strict=True)):
                mean, _, funcs, _, _ = fn(params, jax.random.fold_in(key, 1000 * t + n), x, y,
                                          mask, query)
                panels = [np.asarray(mean)] + [np.asarray(f) for f in funcs[:num_samples]]
                for c, values in enumerate(panels):
                    ax = line[1 + r * (1 + num_samples) + c]
                    _grid_image(ax, image_shape, query, values, shade)
                    if i == 0 and j == 0:
                        ax.set_title(f"{label}: mean" if c == 0 else f"sample {c}", fontsize=7)
    axes[0, 0].set_title("context", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _context_image(ax, image_shape, x, y, shade):
    """The context pixels at their values on a mid-grey background (unknown pixels)."""
    grid = np.full((*image_shape, 3), (0.35, 0.45, 0.6))  # a blue-grey no digit pixel has
    if len(x):
        rows, cols = _pixel(image_shape, x)
        lo, hi = shade
        grid[rows, cols] = ((np.clip(y[:, :1], lo, hi) - lo) / (hi - lo)).repeat(3, axis=1)
    ax.imshow(grid)


def _pixel(image_shape, x) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the pixels at x in [-1, 1]^2 (`images.pixel_coordinates`)."""
    height, width = image_shape
    return (np.rint((x[:, 0] + 1) / 2 * (height - 1)).astype(int),
            np.rint((x[:, 1] + 1) / 2 * (width - 1)).astype(int))


def value_range(y) -> tuple[float, float]:
    """The grey scale of image figures: the data's own range (digits [0, 1], tfds images
    [-0.5, 0.5]), so that every panel of a figure shares it."""
    lo = float(np.min(y))
    return lo, max(float(np.max(y)), lo + 1e-6)


def _image(ax, x, values, context_x, shade):
    """Scatter of pixel values at their 2-D coordinates; context pixels outlined."""
    ax.scatter(x[:, 0], -x[:, 1], c=values, cmap="gray", marker="s", s=60, vmin=shade[0],
               vmax=shade[1])
    if len(context_x):
        ax.scatter(context_x[:, 0], -context_x[:, 1], facecolors="none", edgecolors="C3",
                   marker="s", s=60, linewidths=1)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid_image(ax, image_shape, x, values, shade, context_x=(), title=""):
    """Pixels (x in [-1, 1]^2 as `images.pixel_coordinates`, values [M, C]) drawn as an
    H x W image; pixels not given are blank (NaN), context pixels marked red."""
    height, width = image_shape
    rows, cols = _pixel(image_shape, x)
    channels = values.shape[-1]
    grid = np.full((height, width, channels), np.nan)
    lo, hi = shade
    grid[rows, cols] = (np.clip(values, lo, hi) - lo) / (hi - lo)  # to [0, 1] for imshow
    if channels == 1:
        ax.imshow(grid[..., 0], cmap="gray", vmin=0, vmax=1)
    else:  # RGB: unknown pixels white
        ax.imshow(np.where(np.isnan(grid), 1.0, grid))
    if len(context_x):
        r = (context_x[:, 0] + 1) / 2 * (height - 1)
        c = (context_x[:, 1] + 1) / 2 * (width - 1)
        side = 0.8 * 160 / max(height, width)  # about one pixel, in points (160 pt panels)
        ax.scatter(c, r, s=side**2, facecolors="none", edgecolors="C3", marker="s",
                   linewidths=1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)


def plot_validation_vs_time(metrics_path: str, path: str) -> bool:
    """Validation lmlhd_snis against wall time (the `time_s` of metrics.jsonl), the best so far
    as a step line; False (and no figure) when the log has no timed validation line."""
    t, v = workdir_lib.validation_curve(metrics_path)
    if not t.size:
        return False
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(t, v, "o", ms=3, color="C0", label="validation")
    ax.step(t, np.maximum.accumulate(v), where="post", color="C0", lw=1, label="best so far")
    ax.set(xlabel="wall time (s)", ylabel="validation lmlhd_snis (median, avg over n)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_schedules(schedules, path: str):
    """A sampler's learned annealing path beta_k and step sizes eps_k (`samplers.Schedules`;
    panels for the fields a kernel has)."""
    panels = [name for name in ("beta", "step_size") if getattr(schedules, name) is not None]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3), squeeze=False)
    for ax, name in zip(axes[0], panels, strict=True):
        values = np.asarray(getattr(schedules, name))
        if name == "beta":
            ax.plot(np.arange(len(values)), values, "o-")
            ax.plot([0, len(values) - 1], [0, 1], "k:", lw=0.8, label="linear")
            ax.set(xlabel="step k", ylabel="beta_k", title="annealing schedule")
            ax.legend(fontsize=7)
        else:
            ax.plot(np.arange(1, len(values) + 1), values, "o-")
            ax.set(xlabel="step k", ylabel="eps_k", title="step sizes (whitened)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latent_samples(model, params, key, tasks, context_sizes, num_tasks: int, path: str):
    """2-D latents: weighted particles over contours of the unnormalised posterior."""
    x_all, y_all = np.asarray(tasks.x[:num_tasks]), np.asarray(tasks.y[:num_tasks])
    num_points = x_all.shape[1]
    fig, axes = plt.subplots(num_tasks, len(context_sizes),
                             figsize=(3.0 * len(context_sizes), 2.8 * num_tasks), squeeze=False)
    # params as an argument, never a compile-time constant (see amvi_jax/gap.py)
    log_density = jax.jit(lambda p, x, y, m, g: jax.vmap(model.log_target(p, x, y, m))(g))
    sample = jax.jit(lambda p, k, x, y, m: model.sample(p, k, x, y, m, _PLOT_PARTICLES))
    for t in range(num_tasks):
        for j, n in enumerate(context_sizes):
            mask = first_n_mask(num_points, n)
            out = sample(params, jax.random.fold_in(key, 100 * t + j), x_all[t], y_all[t], mask)
            z, w = np.asarray(out.z), np.asarray(jax.nn.softmax(out.log_w))
            lo, hi = z.min(0) - 1.0, z.max(0) + 1.0
            g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 80), np.linspace(lo[1], hi[1], 80))
            grid = np.stack([g1.ravel(), g2.ravel()], -1).astype(np.float32)
            lp = np.asarray(log_density(params, x_all[t], y_all[t], mask, grid)).reshape(g1.shape)
            ax = axes[t, j]
            ax.contour(g1, g2, np.exp(lp - lp.max()), levels=6, cmap="Greys")
            ax.scatter(z[:, 0], z[:, 1], s=4 + 200 * w, alpha=0.5, color="C0")
            if t == 0:
                ax.set_title(f"n = {n}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_run(model, params, key, tasks, config, workdir: str, schedules=None,
             image_shape=None) -> list[str]:
    """All figures of a finished run; returns their paths. `schedules`: a diffusion's
    `samplers.Schedules` for schedules.png (None: no such figure); `image_shape`: the
    dataset's (`MetaDataset.image_shape`)."""
    num_tasks = min(config.eval.plot_tasks, tasks.x.shape[0])
    if num_tasks == 0:
        return []
    sizes = tuple(config.eval.plot_context_sizes)
    paths = [os.path.join(workdir, "predictions.png")]
    plot_predictions(model, params, key, tasks, sizes, num_tasks, paths[-1], image_shape)
    if image_shape is not None:
        paths.append(os.path.join(workdir, "completions.png"))
        plot_completions([(config.name, model, params)], jax.random.fold_in(key, 3), tasks,
                         sizes, range(num_tasks), paths[-1], image_shape)
    if schedules is not None:
        paths.append(os.path.join(workdir, "schedules.png"))
        plot_schedules(schedules, paths[-1])
    if model.dim_z == 2:
        paths.append(os.path.join(workdir, "latent_samples.png"))
        plot_latent_samples(model, params, jax.random.fold_in(key, 2), tasks, sizes, num_tasks,
                            paths[-1])
    return paths
