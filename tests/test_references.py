"""Code, docstrings and comments describe what they mean instead of pointing outside the project: no issue numbers
of the project's tracker ("#12", "issue 18"), no files of a development workspace (its spec folder), no absolute
paths of a development machine. (Public upstream references such as `NVlabs/FAN#7` name their repository and pass.)"""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ('fan_stl', 'benchmarks', 'tests')
OUTSIDE = re.compile('|'.join((
    r'(?<![\w&/])#\d+\b',  # a tracker number; `Repo#7` (a named repository) and `&#123;` are not
    r'\b[Ii]ssues? \d+\b',
    r'shared/spec\b',  # the development workspace's specification notes
    r'(?<![\w.])/(?:work|home|Users|root)/',  # absolute paths of a development machine
)))


def _references(text: str):
    for number, line in enumerate(text.splitlines(), 1):
        for match in OUTSIDE.finditer(line):
            yield number, match.group(0).strip()


def test_the_patterns_catch_what_they_are_for():
    assert [m for _, m in _references('"""#11.2: NaN logits"""\n# issue 18 and #13\nsee ../shared/spec/x.md')] == [
        '#11', 'issue 18', '#13', 'shared/spec']
    assert [m for _, m in _references('--timm-train /home/dev/timm/train.py; x = y  # ok\nNVlabs/FAN#7')] == [
        '/home/']


def test_no_file_points_outside_the_project():
    found = []
    for folder in SCANNED:
        for path in sorted((ROOT / folder).rglob('*.py')):
            if path == Path(__file__).resolve():
                continue
            found += [f'{path.relative_to(ROOT)}:{n}: {m}' for n, m in _references(path.read_text(encoding='utf-8'))]
    assert not found, 'describe what is meant instead of pointing outside the project:\n' + '\n'.join(found)
