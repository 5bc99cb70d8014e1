"""The README's Layout table is drawn from the real tree: one row per room of the package, each with the rooms it may
import exactly as `tests/test_import_graph.py` enforces them."""
import re
from pathlib import Path

from tests.test_import_graph import ALLOWED, ANYTHING

ROOT = Path(__file__).resolve().parents[1]


def _layout_rows() -> dict:
    text = (ROOT / 'README.md').read_text()
    section = text.split('\n## Layout\n', 1)[1].split('\n## ', 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r'\| `fan_stl/(\w+)/` \| .+ \| (.+) \|$', line)
        if match:
            rooms = match.group(2).strip()
            rows[match.group(1)] = ANYTHING if rooms == 'anything' else set() if rooms == 'nothing from fan_stl' \
                else {room.strip() for room in rooms.split(',')}
    return rows


def test_layout_table_lists_every_room_of_the_package():
    rooms = {p.parent.name for p in (ROOT / 'fan_stl').glob('*/__init__.py')}
    assert set(_layout_rows()) == rooms


def test_layout_table_says_what_each_room_may_import_as_the_import_graph_test_enforces():
    rows = _layout_rows()
    assert {room: rows[room] for room in rows} == {room: ALLOWED[room] for room in rows}


def test_every_fan_stl_name_the_docs_show_exists_and_their_python_parses():
    """ A module, function or class path that README.md or MODEL_CARD.md names (`fan_stl.x.y`) resolves, and every
    python block of the README parses: a move or a rename updates the user's guide too. """
    import ast
    import importlib
    missing = []
    for doc in ('README.md', 'MODEL_CARD.md'):
        text = (ROOT / doc).read_text()
        names = set(re.findall(r'from (fan_stl[\w.]*) import', text)) | set(re.findall(r'`(fan_stl(?:\.\w+)+)', text))
        for name in sorted(names):
            module, _, attribute = name.rpartition('.')
            try:
                importlib.import_module(name)
            except ImportError:
                try:
                    getattr(importlib.import_module(module), attribute)
                except (ImportError, AttributeError):
                    missing.append(f'{doc}: {name}')
        if doc == 'README.md':
            for block in re.findall(r'```python\n(.*?)```', text, re.S):
                ast.parse(block)
    assert not missing, missing
