"""The project's structure, checked: no import cycle among fer_core/ and demo/ modules (function-level imports
included); layers that read one way; no path hacks; modules and functions small enough to hold in mind.

Layers, lowest first: the inference modules of ``fer_core`` (images, faces, preprocess, models, weights, runtime,
explain, predict, records, ...) -> ``fer_core.train`` (training may use inference, never the reverse; its commands,
``fer_core.train.commands``, too) and ``fer_core.commands`` (the commands that read, prepare data and publish: over
inference only); ``demo`` and ``app.py`` use ``fer_core`` below training.
"""
import ast
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGES = ("fer_core", "demo")


def _module_name(path):
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        is_pkg = path.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            for c in candidates:
                while c and c not in files:  # a name imported from a module, or a submodule's parent
                    c = c.rpartition(".")[0]
                if c and c != name:
                    deps.add(c)
        graph[name] = deps
    return graph


def find_cycle(graph):
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == "open":
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        state[n] = "done"
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_the_checker_sees_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    graph = import_graph()
    assert "fer_core.weights" in graph["fer_core.train.export"]  # relative imports resolved


def test_no_import_cycle_in_fer_core_or_demo():
    graph = import_graph()
    # a package's __init__ re-exporting its modules is not a cycle of the modules themselves
    graph = {n: {d for d in deps if not (n.startswith(d + ".") and d in PACKAGES + ("fer_core.models", "fer_core.train",
                                                                                      "fer_core.data"))}
             for n, deps in graph.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
CODE_DIRS = ("fer_core", "demo", "bench", "train_scripts")


def python_files(*dirs):
    for d in dirs:
        yield from sorted((ROOT / d).rglob("*.py"))


def imported(path: Path, src: str | None = None) -> list[tuple[int, str]]:
    """``(line, module)`` of every import in a file, relative imports resolved against its package."""
    package = list(path.relative_to(ROOT).parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text() if src is None else src)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out += [(node.lineno, mod)] + [(node.lineno, f"{mod}.{a.name}") for a in node.names]
    return out


def layer_of(path: Path) -> str:
    rel = path.relative_to(ROOT).parts
    if rel[0] == "fer_core" and len(rel) > 2 and rel[1] in ("train", "commands"):
        return rel[1]
    return "inference" if rel[0] == "fer_core" else rel[0]


# what each layer may not import
FORBIDDEN = {
    "inference": ("fer_core.train", "fer_core.commands", "demo", "bench", "tests"),
    "train": ("fer_core.commands", "demo", "bench", "tests"),
    "commands": ("fer_core.train", "demo", "bench", "tests"),
    "demo": ("fer_core.train", "fer_core.commands", "bench", "tests"),
    "app.py": ("fer_core.train", "fer_core.commands", "bench", "tests"),
}


def test_layers_read_one_way():
    bad = []
    for path in [*python_files("fer_core", "demo"), ROOT / "app.py"]:
        layer = "app.py" if path.name == "app.py" and path.parent == ROOT else layer_of(path)
        for line, mod in imported(path):
            if any(mod == f or mod.startswith(f + ".") for f in FORBIDDEN[layer]):
                bad.append(f"{path.relative_to(ROOT)}:{line} ({layer}) imports {mod}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import():
    """The layer check itself: an inference module reaching into training is found, relative or absolute."""
    probe = ROOT / "fer_core" / "predict" / "probe.py"
    assert layer_of(probe) == "inference" and layer_of(ROOT / "fer_core/train/loop.py") == "train"
    mods = [m for _, m in imported(probe, "from ..train.hardware import x\nimport fer_core.commands\n")]
    assert "fer_core.train.hardware" in mods and "fer_core.commands" in mods


def test_no_path_edits():
    """The package is installed (``pip install -e .``): no file edits ``sys.path`` to find it."""
    bad = [f"{p.relative_to(ROOT)}:{n.lineno}" for p in [*python_files(*CODE_DIRS, "tests"), ROOT / "app.py"]
           for n in ast.walk(ast.parse(p.read_text()))
           if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
           and ast.unparse(n.func) in ("sys.path.insert", "sys.path.append", "sys.path.extend")]
    assert not bad, bad


@pytest.mark.parametrize("path", list(python_files(*CODE_DIRS)) + [ROOT / "app.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_small_modules_and_functions(path):
    src = path.read_text()
    assert src.count("\n") <= MAX_MODULE_LINES, f"{src.count(chr(10))} lines: split it where its jobs part"
    long = [f"{n.name} ({n.end_lineno - n.lineno + 1} lines)" for n in ast.walk(ast.parse(src))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, long
