"""The project's structure: no import cycle among fer_core/ and demo/ modules (function-level imports included)."""
import ast

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
