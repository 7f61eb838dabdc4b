"""Package structure rules (docs/design.md, "Structure"), checked on the source with ``ast``:

* no private name (``_foo``, not dunder) of a ``hat`` module is used from another module, by
  ``from hat.x import _foo`` or by ``module._foo`` (names outside ``hat``, e.g. torch's, are not ours to police);
* no module outside ``hat/cli`` imports ``hat.cli`` (library, benchmarks and scripts call the library);
* a ``hat/cli`` module imports no other CLI module (their shared plumbing, ``cli_main``, lives in ``hat.errors``);
* ``ImportError`` is caught only in ``hat/optional.py``: optional packages go through ``hat.optional.require``;
* no private attribute (``obj._foo``) is used except on ``self``/``cls``/``super()`` or where the same module
  defines it (a class's classmethod on its own instance): another module's object, ours or a library's, is used
  through its public names only;
* no function in ``hat/`` is longer than 80 lines (:data:`LONG_FUNCTIONS` excepted);
* data flows one way (docs/design.md): a ``hat`` package imports only packages before it in :data:`LAYERS`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("hat", "benchmarks", "scripts")

# Violations that remain only because their owners are changing that code now (issue 12 lists them). Each entry
# must still occur (a fixed one fails test_allow_list_is_current: delete it then); the list only shrinks.
ALLOWED: set[str] = set()


# docs/design.md's data flow, bottom to top: space -> nn -> data/train -> export -> latency -> predictor -> search.
# Each top-level package (or module) of hat may import only itself and the ones listed before it. A new package
# goes where its imports put it (``io`` is issue 13's ``hat/io.py``, ``translate`` issue 15's ``hat/translate.py``;
# ``pipeline``'s steps call every stage and ``quickstart`` is a recipe of them, so they come last before the CLIs).
LAYERS = ["errors", "registry", "units", "io", "resources", "config", "optional", "transport", "hat_yaml", "space",
          "distributed", "score", "runtime", "nn", "generate", "data", "interop", "checkpoints", "train", "export",
          "latency", "predictor", "search", "translate", "baselines", "compare", "pipeline", "quickstart", "cli"]


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _hat_module_exists(name: str) -> bool:
    p = ROOT.joinpath(*name.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


def _is_hat(name: str) -> bool:
    return name == "hat" or name.startswith("hat.")


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ``["a", "b", "c"]``; None for anything but a chain of names."""
    out = []
    while isinstance(node, ast.Attribute):
        out.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    out.append(node.id)
    return out[::-1]


def violations_of(path: Path, source: str | None = None) -> list[str]:
    """The structure violations in one source file (``source``: its text, if not read from ``path``), as
    ``"<file>: <what>"`` lines."""
    rel = path.relative_to(ROOT).as_posix()
    module = _module_name(path)
    in_cli = module.startswith("hat.cli.") or module == "hat.cli"
    tree = ast.parse(path.read_text() if source is None else source, str(path))
    found = []
    bound = {}  # local name -> hat module it is bound to (for ``name._private`` checks)

    def imported(target: str) -> None:
        if not (target == "hat.cli" or target.startswith("hat.cli.")) or target == module:
            return
        if not in_cli:
            found.append(f"{rel}: imports {target}")
        elif target != "hat.cli":
            found.append(f"{rel}: imports CLI module {target}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if not _is_hat(a.name):
                    continue
                imported(a.name)
                parts = a.name.split(".")
                if any(_private(p) for p in parts):
                    found.append(f"{rel}: imports private module {a.name}")
                if a.asname:
                    bound[a.asname] = a.name
                else:
                    bound[parts[0]] = parts[0]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(node, module, _is_package(path))
            if not _is_hat(src):
                continue
            for a in node.names:
                sub = f"{src}.{a.name}"
                is_module = _hat_module_exists(sub)
                imported(sub if is_module else src)
                if _private(a.name) and src != module:
                    found.append(f"{rel}: imports private {sub}")
                if is_module:
                    bound[a.asname or a.name] = sub
        elif isinstance(node, ast.ExceptHandler) and module.startswith("hat") and module != "hat.optional":
            names = [node.type] if not isinstance(node.type, ast.Tuple) else list(node.type.elts)
            for t in names:
                if isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError"):
                    found.append(f"{rel}:{node.lineno}: catches {t.id} (use hat.optional.require)")

    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        chain = _dotted(node)
        if not chain or chain[0] not in bound:
            continue
        target = bound[chain[0]]
        for attr in chain[1:]:
            if _private(attr) and target != module:
                found.append(f"{rel}: uses private {target}.{attr}")
                break
            if not _hat_module_exists(f"{target}.{attr}"):
                break  # past the module path: attributes of an object, not of a module
            target = f"{target}.{attr}"
    return sorted(set(found + private_attribute_uses(tree, rel, set(bound))))


def private_attribute_uses(tree: ast.AST, rel: str, hat_modules: set[str] = frozenset()) -> list[str]:
    """``obj._foo`` uses where ``obj`` is not ``self``/``cls``/``super()`` and this module defines no ``_foo``
    (names bound to ``hat`` modules, ``hat_modules``, are checked by the module rule)."""
    defined = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    defined |= {t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Attribute)}
    defined |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]) if isinstance(t, ast.Name)}
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _private(node.attr)) or node.attr in defined:
            continue
        chain = _dotted(node)
        if chain and chain[0] in hat_modules:
            continue
        v = node.value
        if (isinstance(v, ast.Name) and v.id in ("self", "cls")) or (
                isinstance(v, ast.Call) and isinstance(v.func, ast.Name) and v.func.id == "super"):
            continue
        found.append(f"{rel}:{node.lineno}: uses private attribute {ast.unparse(node)}")
    return found


# Functions allowed past 80 lines: ports whose line-by-line correspondence with the original is worth more.
LONG_FUNCTIONS = {"hat/runtime/beam_search.py:BeamSearch.search"}  # fairseq 0.12's SequenceGenerator._generate


def long_functions(limit: int = 80) -> set[str]:
    """``file:Class.function`` of every function in ``hat/`` longer than ``limit`` lines."""
    out = set()
    for path in sorted((ROOT / "hat").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in [None, *[n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]]:
            body = tree.body if cls is None else cls.body
            for fn in (n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
                if fn.end_lineno - fn.lineno + 1 > limit:
                    qual = f"{cls.name}.{fn.name}" if cls else fn.name
                    out.add(f"{path.relative_to(ROOT).as_posix()}:{qual}")
    return out


def test_no_function_is_over_80_lines():
    assert long_functions() == LONG_FUNCTIONS


def _sources() -> list[Path]:
    return sorted(p for d in SCANNED for p in (ROOT / d).rglob("*.py"))


@pytest.fixture(scope="module")
def all_violations() -> set[str]:
    return {v for p in _sources() for v in violations_of(p)}


def test_structure_rules_hold(all_violations):
    new = sorted(all_violations - ALLOWED)
    assert not new, "structure rules broken (see this file's docstring):\n" + "\n".join(new)


def _top_level_imports(path: Path) -> set[str]:
    """The hat top-level packages/modules that ``path`` imports (lazily or not), ``hat.cli`` left out."""
    module = _module_name(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(node, module, _is_package(path))
            names = [f"{src}.{a.name}" if src == "hat" else src for a in node.names]
        else:
            continue
        out |= {n.split(".")[1] for n in names if n.startswith("hat.")}
    return out - {"cli"}  # imports of hat.cli are the CLI rule's business (test_structure_rules_hold)


def test_data_flows_one_way():
    wrong, unknown = [], set()
    for path in sorted((ROOT / "hat").rglob("*.py")):
        parts = path.relative_to(ROOT / "hat").with_suffix("").parts
        if parts == ("__init__",):
            continue
        me = parts[0]
        for dep in _top_level_imports(path) - {me}:
            if me not in LAYERS or dep not in LAYERS:
                unknown |= {x for x in (me, dep) if x not in LAYERS}
            elif LAYERS.index(dep) > LAYERS.index(me):
                wrong.append(f"{path.relative_to(ROOT).as_posix()}: {me} imports {dep}, which comes after it")
    assert not unknown, f"place {sorted(unknown)} in LAYERS (tests/test_structure.py) and docs/design.md"
    assert not wrong, "imports against the data flow of docs/design.md:\n" + "\n".join(wrong)


def test_allow_list_is_current(all_violations):
    fixed = sorted(ALLOWED - all_violations)
    assert not fixed, "fixed, delete from ALLOWED in tests/test_structure.py:\n" + "\n".join(fixed)


@pytest.mark.parametrize("source, expected", [
    ("from hat.search.pareto import _archive", ["imports private hat.search.pareto._archive"]),
    ("import hat.export.onnx as o\no._wrappers(m)", ["uses private hat.export.onnx._wrappers"]),
    ("from hat.export import onnx\nonnx._wrappers(m)", ["uses private hat.export.onnx._wrappers"]),
    ("import hat.export.onnx\nhat.export.onnx._wrappers(m)", ["uses private hat.export.onnx._wrappers"]),
    ("from hat.cli.search import main", ["imports hat.cli.search"]),
    ("from hat.cli import train", ["imports hat.cli.train"]),
    ("try:\n    import tvm\nexcept ImportError:\n    pass", ["catches ImportError (use hat.optional.require)"]),
    ("from torch.nn.modules.module import _addindent", []),  # importing a library's private name: not ours
    ("from hat.config import __version__, load_yaml", []),  # dunder
    # another module's object, ours or a library's, is used through its public names only (issue 27)
    ("import torch\ntorch._foreach_mul_([], 1.0)", ["uses private attribute torch._foreach_mul_"]),
    ("from hat.search import FitnessCache\nx = FitnessCache()._hits", ["uses private attribute FitnessCache()._hits"]),
    ("def f(o):\n    return o._hidden", ["uses private attribute o._hidden"]),
    # self, cls, super(), and a class's own classmethod on an instance it made (the module defines _f)
    ("class A:\n    def _f(self):\n        return super()._g() + self._h\n    @classmethod\n    def g(cls):\n"
     "        a = cls()\n        return a._f(), cls._h", []),
])
def test_checker_sees_violations(source, expected):
    got = [v.split(": ", 1)[1] for v in violations_of(ROOT / "hat" / "structure_probe.py", source)]
    assert got == expected


def test_cli_modules_import_no_other_cli_module():
    source = "from hat.errors import cli_main\nfrom hat.cli import translate\nfrom . import search"
    got = [v.split(": ", 1)[1] for v in violations_of(ROOT / "hat" / "cli" / "probe.py", source)]
    assert got == ["imports CLI module hat.cli.search", "imports CLI module hat.cli.translate"]


def module_imports(path: Path, source: str | None = None) -> set[str]:
    """The hat modules ``path`` imports anywhere in the file (function-level imports included): for
    ``from hat.x import y`` the module ``hat.x.y`` when it is one, else ``hat.x``."""
    module = _module_name(path)
    out = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if _is_hat(a.name)}
        elif isinstance(node, ast.ImportFrom):
            src = _resolve(node, module, _is_package(path))
            if _is_hat(src):
                out |= {f"{src}.{a.name}" if _hat_module_exists(f"{src}.{a.name}") else src for a in node.names}
    return out - {module}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_no_import_cycles():
    """No cycle between hat's modules, function-level imports included (a lazy import hides a dependency, it does
    not remove it)."""
    graph = {_module_name(p): module_imports(p) for p in sorted((ROOT / "hat").rglob("*.py"))}
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_cycle_checker_sees_function_level_cycles():
    graph = {"hat.a": module_imports(ROOT / "hat" / "a.py", "def f():\n    from hat.b import g\n"),
             "hat.b": module_imports(ROOT / "hat" / "b.py", "from hat.a import f\n"), "hat.c": {"hat.a"}}
    assert graph["hat.a"] == {"hat.b"} and import_cycles(graph) == [["hat.a", "hat.b"]]
