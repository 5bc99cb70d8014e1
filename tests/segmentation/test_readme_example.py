"""The README's CamVid fine-tuning example runs as written (on a few real images, one epoch, small size)."""
import re
from pathlib import Path

from tests.segmentation.camvid_helpers import real_camvid

README = Path(__file__).resolve().parents[2] / 'README.md'
SETTINGS = re.compile(r"^ROOT, SIZE, EPOCHS, LIMIT = .*$", re.M)


def readme_example() -> str:
    blocks = re.findall(r'```python\n(.*?)```', README.read_text(), re.S)
    (example,) = [b for b in blocks if 'class LightSeg' in b]
    assert len(example.strip().splitlines()) <= 40
    return example


def test_readme_segmentation_example_runs(capsys):
    root = real_camvid()
    code, count = SETTINGS.subn(f'ROOT, SIZE, EPOCHS, LIMIT = {str(root)!r}, (32, 64), 1, 4', readme_example())
    assert count == 1
    exec(compile(code, 'README example', 'exec'), {'__name__': 'readme_example'})
    printed = capsys.readouterr().out
    miou = float(re.search(r'CamVid test mIoU ([\d.]+) %', printed).group(1))
    assert 0 <= miou <= 100
