"""The package's import graph: no cycles (a module never imports, directly or not, a module that imports it), and
each room imports only the rooms below it.

Rooms are the package's folders (`fan_stl/<room>/...`), named by a module's first component after `fan_stl`:

    utils <- models <- weights <- stl <- training <- demo <- commands / cli
    robustness imports only utils, models and weights (never stl, training, demo or the command line)

The entry points at the package root (`fan_stl` itself, `__main__`, `cli`, `train`, `validate`) may import anything;
a root module whose docstring starts with "Deprecated alias of `fan_stl.X`" is a shim that may import X alone, and
nothing in the package imports a shim. Every import is counted, at module level or inside a function.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

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


ANYTHING = None
# room -> the rooms it may import besides itself (ANYTHING: no limit); the package root `fan_stl` counts for every
# room but utils, since importing any module imports it
ALLOWED: Dict[str, Optional[Set[str]]] = {
    'utils': set(),
    'models': {'utils'},
    'weights': {'utils', 'models'},
    'stl': {'utils', 'models', 'weights'},
    'robustness': {'utils', 'models', 'weights'},
    'segmentation': {'utils', 'models', 'weights', 'robustness'},
    'training': {'utils', 'models', 'weights', 'stl', 'robustness'},
    'demo': {'utils', 'models', 'weights', 'stl', 'robustness', 'training'},
    'commands': ANYTHING,
    'entry': ANYTHING,
}
ENTRY_POINTS = {'fan_stl', 'fan_stl.__main__', 'fan_stl.cli', 'fan_stl.train', 'fan_stl.validate'}
SHIM_DOC = 'Deprecated alias of `'


def _shim_target(path: Path) -> Optional[str]:
    doc = ast.get_docstring(ast.parse(path.read_text())) or ''
    return doc[len(SHIM_DOC):].split('`', 1)[0] if doc.startswith(SHIM_DOC) else None


def _room(name: str, paths: Dict[str, Path]) -> str:
    """ The room of a module: 'entry', 'shim' or a folder's name. """
    if name in ENTRY_POINTS:
        return 'entry'
    parts = name.split('.')
    if len(parts) == 2 and paths[name].name != '__init__.py':  # a module file at the package root
        if _shim_target(paths[name]):
            return 'shim'
        raise AssertionError(f'{name} is a root module in no room: move it into a folder, or list it in '
                             f'ENTRY_POINTS of {Path(__file__).name}')
    if parts[1] not in ALLOWED:
        raise AssertionError(f'fan_stl/{parts[1]}/ is a room without rules: add it to ALLOWED in {Path(__file__).name}')
    return parts[1]


def layering_violations() -> List[str]:
    """ Every import edge the room rules forbid, as 'importer (room) -> imported (room)'. """
    paths = {_module_name(p): p for p in PACKAGE.rglob('*.py')}
    found = []
    for name, path in sorted(paths.items()):
        room = _room(name, paths)
        for dep in sorted(_imports(path, set(paths))):
            if dep == 'fan_stl' and room != 'utils':
                continue
            dep_room = _room(dep, paths)
            if room == 'shim':
                allowed = dep == _shim_target(path)
            elif dep_room == 'shim':
                allowed = ALLOWED[room] is ANYTHING and room != 'commands'  # only the entry points use old paths
            else:
                allowed = ALLOWED[room] is ANYTHING or dep_room == room or dep_room in ALLOWED[room]
            if not allowed:
                found.append(f'{name} ({room}) -> {dep} ({dep_room})')
    return found


def test_rooms_import_only_the_rooms_below_them():
    violations = layering_violations()
    for edge in violations:
        print(edge)
    assert not violations, 'imports against the layering:\n' + '\n'.join(violations)


def test_the_rules_catch_an_upward_import(tmp_path, monkeypatch):
    """ The check itself: a utils module importing the demo, robustness importing stl and the package importing a
    shim (instead of the module it aliases) are reported; the shim's own import is not. """
    package = tmp_path / 'fan_stl'
    for module, text in {'__init__.py': '', 'utils/__init__.py': '', 'utils/a.py': 'from ..demo import b\n',
                         'demo/__init__.py': '', 'demo/b.py': 'from ..utils import a\n',
                         'robustness/__init__.py': '', 'robustness/c.py': 'import fan_stl.stl.d\n',
                         'stl/__init__.py': '', 'stl/d.py': '', 'demo/e.py': 'from .. import old\n',
                         'old.py': '"""Deprecated alias of `fan_stl.demo.b`."""\nfrom .demo import b\n'}.items():
        (package / module).parent.mkdir(parents=True, exist_ok=True)
        (package / module).write_text(text)
    monkeypatch.setitem(globals(), 'PACKAGE', package)
    assert layering_violations() == ['fan_stl.demo.e (demo) -> fan_stl.old (shim)',
                                     'fan_stl.robustness.c (robustness) -> fan_stl.stl.d (stl)',
                                     'fan_stl.utils.a (utils) -> fan_stl.demo.b (demo)']
