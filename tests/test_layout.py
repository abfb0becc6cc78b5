"""The house rules: no import cycle in the library, the library never imports the repository's
configs/ or experiments/, and no text points to a folder outside the repository."""

import ast
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = os.path.join(ROOT, "amvi_jax")


def _modules() -> dict[str, str]:
    """Dotted name -> file of every module and package of amvi_jax."""
    found = {}
    for folder, _, files in os.walk(LIBRARY):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), ROOT)[:-3]
                dotted = rel.replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = os.path.join(folder, name)
    return found


def _imports(path: str, modules) -> set[str]:
    """What a file imports. `from pkg import sub` depends on pkg.sub when that is a module
    (Python runs pkg/__init__ first, but the code only needs the submodule); otherwise on pkg."""
    with open(path) as f:
        tree = ast.parse(f.read())
    deps = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            deps.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                deps.add(sub if sub in modules else node.module)
    return deps


def _graph():
    modules = _modules()
    return {m: _imports(p, modules) for m, p in modules.items()}


def test_library_has_no_import_cycle():
    graph = _graph()
    internal = {m: {d for d in deps if d in graph and d != m} for m, deps in graph.items()}
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for d in sorted(internal[m]):
            if state.get(d) == "open":
                cycles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = "done"

    for m in sorted(internal):
        if m not in state:
            visit(m)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_library_does_not_import_configs_or_experiments():
    for module, deps in _graph().items():
        bad = {d for d in deps if d.split(".")[0] in ("configs", "experiments", "tests")}
        assert not bad, (module, bad)


def test_methods_do_not_import_each_other():
    """A method may span modules named after it (`amortized`, `amortized_step`); different
    methods share only `methods.base` and the library below."""
    graph = _graph()
    methods = {m for m in graph
               if m.startswith("amvi_jax.methods.") and m != "amvi_jax.methods.base"}

    def method(module):
        return module.rsplit(".", 1)[1].split("_")[0]

    for m in methods:
        others = {d for d in graph[m] & methods if method(d) != method(m)}
        assert not others, (m, others)


def test_no_text_points_outside_the_repository():
    """The repository stands alone (docs/DESIGN.md, introduction): no text names a path that
    climbs out of it, and every relative Markdown link resolves to a file inside it."""
    parent = re.compile(r"\.\./")
    link = re.compile(r"\]\(([^)#\s]+)[^)]*\)")
    paths = [os.path.join(ROOT, "README.md")]
    for top in ("docs", "amvi_jax", "configs", "experiments", "tests"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            paths += [os.path.join(folder, f) for f in files if f.endswith((".py", ".md"))]
    offenders = []
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                where = f"{os.path.relpath(path, ROOT)}:{number}: {line.strip()}"
                if parent.search(line):
                    offenders.append(where)
                if not path.endswith(".md"):
                    continue
                for target in link.findall(line):
                    if "://" in target or target.startswith("mailto:"):
                        continue
                    resolved = os.path.realpath(os.path.join(os.path.dirname(path), target))
                    inside = resolved.startswith(os.path.realpath(ROOT) + os.sep)
                    if not (inside and os.path.exists(resolved)):
                        offenders.append(where)
    assert not offenders, "\n".join(offenders)


def test_library_reads_config_fields_without_defaults():
    """Defaults live in configs/default.py only (old runs: `workdir.ADDED_LATER`): a
    `<something>.get("field", default)` on a config inside the library would be a second home
    for a default that can drift from the configs'."""
    config_like = re.compile(r"\b(config|cfg|c|m|g|tc|ev|model_config|train_config|"
                             r"config\.\w+)\.get\(")
    found = []
    for module, path in _modules().items():
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if config_like.search(line):
                    found.append(f"{module}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_shared_types_come_from_the_types_module():
    """`samplers/base.py` is what a sampler needs; a type or density the rest of the library
    shares (SamplerOutput, log_normal_diag, ...) is imported from `amvi_jax.types`."""
    graph = _graph()
    users = sorted(m for m, deps in graph.items()
                   if "amvi_jax.samplers.base" in deps and not m.startswith("amvi_jax.samplers"))
    assert not users, users
