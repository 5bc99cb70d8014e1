"""The package's import graph has no cycles (a module never imports, directly or not, a module that imports it)."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / 'fan_stl'


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _imports(path: Path, modules: set) -> set:
    name = _module_name(path)
    base = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = '.'.join(base[:len(base) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ''
            found |= {f'{target}.{a.name}' if f'{target}.{a.name}' in modules else target for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycles():
    paths = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    done, cycles = set(), []

    def visit(name, stack):
        if name in stack:
            cycles.append(stack[stack.index(name):] + [name])
        elif name not in done:
            for dep in graph[name]:
                visit(dep, stack + [name])
            done.add(name)

    for name in graph:
        visit(name, [])
    assert not cycles, f'import cycles: {cycles}'
