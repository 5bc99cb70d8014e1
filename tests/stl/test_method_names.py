"""No code compares a method, label-source, relabel-rule or stage name: it asks the registry's object (or the config).

A comparison such as `config.mix_method == 'mixtoken'` or `stage == 'stl'` outside its registry is the special-casing
that makes a new method edit several modules; this test finds every such comparison in fan_stl/ (the AST, not text).
"""
import ast
from pathlib import Path

from fan_stl.stl import ATTENTION_RELABELS, BATCH_AUGMENTS, LABEL_SOURCES, MIX_METHODS
from fan_stl.stl.config import STAGES

PACKAGE = Path(__file__).resolve().parents[2] / 'fan_stl'
NAMES = set(MIX_METHODS) | set(LABEL_SOURCES) | set(ATTENTION_RELABELS) | set(STAGES) | set(BATCH_AUGMENTS)


def _strings(node: ast.AST):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        for element in node.elts:
            yield from _strings(element)


def method_name_comparisons(source: str):
    """ `(line, name)` of every `==`, `!=`, `in`, `not in` comparison with a registered name in `source`. """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(
                isinstance(op, (ast.Eq, ast.NotEq, ast.In, ast.NotIn)) for op in node.ops):
            for side in [node.left, *node.comparators]:
                found += [(node.lineno, name) for name in _strings(side) if name in NAMES]
    return found


def test_the_finder_sees_the_special_cases_it_forbids():
    assert method_name_comparisons("if config.mix_method == 'mixtoken': pass") == [(1, 'mixtoken')]
    assert method_name_comparisons("x = stage != 'stl'") == [(1, 'stl')]
    assert method_name_comparisons("ok = m not in ('mixup_cutmix', 'maskmix')") == [(1, 'mixup_cutmix'), (1, 'maskmix')]
    assert method_name_comparisons("ok = mode == 'batch'") == []


def test_no_method_name_is_compared_outside_its_registry():
    found = [f'{path.relative_to(PACKAGE.parent)}:{line}: {name!r}' for path in sorted(PACKAGE.rglob('*.py'))
             for line, name in method_name_comparisons(path.read_text())]
    assert not found, 'ask the registry\'s object or the config instead of comparing names:\n' + '\n'.join(found)
