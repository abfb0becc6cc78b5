"""The README's sampler example runs as written and recovers the log Z it promises."""

import math
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_readme_sampler_example():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("### Use a sampler on your own density", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102
    out = scope["out"]
    log_z = math.log(2 * math.pi * 0.25)
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    log_z_hat = float(logsumexp(out.log_w) - jnp.log(out.log_w.shape[0]))
    assert out.z.shape == (1024, 2)
    assert float(out.log_w.mean()) < log_z
    assert abs(log_z_hat - log_z) < 0.05, (log_z_hat, log_z)
