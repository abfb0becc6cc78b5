"""Data parallelism: 4 (fake CPU) devices give the same step and evaluation as one device."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_SCRIPT = textwrap.dedent("""
    import json, sys
    import jax, numpy as np
    from amvi_jax import evaluate, methods, sharding, workdir
    from amvi_jax.methods import amortized_step as step_lib
    from configs import default

    assert jax.device_count() == 4, jax.devices()
    config = default.with_diffusion(default.get_config(), "uha", num_steps=2)
    config.data.update(dict(num_tasks=8, num_points=8, num_test_points=16,
                            num_validation_tasks=4, num_test_tasks=8, data_dir=sys.argv[1]))
    config.model.update(dict(encoder_hidden=(16,), decoder_hidden=(16,)))
    config.train.update(dict(batch_size=8, num_subsets=2, num_particles=2))
    ds = workdir.load_data(config)
    setup = methods.REGISTRY["amortized"].setup(config, ds)
    model = setup.model
    opt = step_lib.make_optimizer(config)
    result = {}
    for n in (1, 4):
        mesh = sharding.make_mesh(n)
        state = jax.device_put(jax.tree.map(np.array, setup.state), sharding.replicated(mesh))
        step = step_lib.make_train_step(model, opt, config, mesh=mesh)
        losses = []
        for _ in range(3):
            state, metrics = step(state, jax.random.PRNGKey(1), ds.meta_train.x,
                                  ds.meta_train.y)
            losses.append(float(metrics["loss"]))
        summary = evaluate.evaluate(model, state.params, jax.random.PRNGKey(2), ds.test,
                                    (0, 8), 16, 8, mesh=mesh)
        result[n] = dict(losses=losses,
                         params=[np.asarray(a).ravel().tolist()
                                 for a in jax.tree.leaves(state.params)],
                         eval=summary["average"],
                         devices=len(step(state, jax.random.PRNGKey(1), ds.meta_train.x,
                                          ds.meta_train.y)[0].step.sharding.device_set))
    print("RESULT" + json.dumps(result))
""")


@pytest.mark.slow
def test_four_device_step_and_evaluation_match_one_device(data_dir):
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4"
    env = dict(os.environ, XLA_FLAGS=flags,
               JAX_PLATFORMS="cpu", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, data_dir], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT"))
    result = json.loads(line[len("RESULT"):])
    one, four = result["1"], result["4"]
    assert four["devices"] == 4 and one["devices"] == 1
    for a, b in zip(one["losses"], four["losses"], strict=True):
        assert abs(a - b) <= 1e-5 * max(1.0, abs(a)), (a, b)
    for a, b in zip(one["params"], four["params"], strict=True):
        diff = max(abs(u - v) for u, v in zip(a, b, strict=True))
        assert diff <= 1e-5, diff
    for k, v in one["eval"].items():
        assert abs(v - four["eval"][k]) <= 1e-4 * max(1.0, abs(v)), (k, v, four["eval"][k])


def test_batch_not_divisible_by_devices_is_rejected():
    import numpy as np
    from jax.sharding import Mesh

    from amvi_jax import sharding

    mesh = Mesh(np.asarray([object()] * 4).reshape(4), ("data",))
    with pytest.raises(ValueError, match=r"config.train.batch_size=6 must be divisible"):
        sharding.check_divisible(6, mesh, "train.batch_size")
