"""Shape bias on texture/shape cue-conflict stimuli (Geirhos et al., ICLR 2019), scored as model-vs-human does.

Stimuli layout: `<root>/<category>/<shape><n>-<texture><m>.png` (e.g. `cat/cat4-elephant1.png`), the category folder
being the shape's, both categories among the 16 below. Each 1000-way ImageNet output becomes 16 category scores: the
mean softmax probability over the category's ImageNet classes (model-vs-human's default aggregation); the decision is
the best category. Stimuli whose shape and texture categories agree are left out. Shape bias = shape decisions /
(shape + texture decisions); per category, over the stimuli of that shape folder.

The 16 categories and their ImageNet-1k classes follow Geirhos et al. (2018, 2019): each category is a WordNet synset
and its classes are ImageNet-1k hyponyms of it, as listed in model-vs-human's `human_categories.py`. Caveat: that
file could not be fetched here; the indices below are written from that definition and recollection of the file, and
checked only by the class names (tests/robustness/test_cue_conflict.py), not against the file itself.
"""
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from .layouts import LayoutError, is_image

STIMULUS_NAME = re.compile(r'^([a-z]+)(\d+)-([a-z]+)(\d+)$')
CATEGORY_INDICES: Dict[str, Tuple[int, ...]] = {
    'airplane': (404,),
    'bear': (294, 295, 296, 297),
    'bicycle': (444, 671),
    'bird': (8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90, 91, 92, 93,
             94, 95, 96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138, 139, 140, 141, 142,
             143, 144, 145),
    'boat': (472, 554, 625, 814, 914),
    'bottle': (440, 720, 737, 898, 899, 901, 907),
    'car': (436, 511, 817),
    'cat': (281, 282, 283, 284, 285, 286),
    'chair': (423, 559, 765),
    'clock': (409, 530, 892),
    'dog': tuple(i for i in range(152, 269) if i not in (192, 204, 227, 242, 251, 258, 260, 264)),
    'elephant': (385, 386),
    'keyboard': (508,),
    'knife': (499,),
    'oven': (766,),
    'truck': (555, 569, 656, 675, 717, 734, 864, 867),
}
CATEGORIES: Tuple[str, ...] = tuple(sorted(CATEGORY_INDICES))


@dataclass(frozen=True)
class Stimulus:
    path: Path
    shape: str
    texture: str


def list_stimuli(root: Path) -> List[Stimulus]:
    """ Every stimulus under `root`, checked: folder = a category, file = `<shape><n>-<texture><m>.<ext>` with the
    folder's shape; one error listing the files that do not parse. """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f'cue-conflict folder {root} does not exist (or is not a folder).')
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
    unknown = [p.name for p in folders if p.name not in CATEGORY_INDICES]
    if unknown or not folders:
        raise LayoutError(f'cue-conflict folder {root}: expected one folder per category ({", ".join(CATEGORIES)}); '
                          f'found {", ".join(unknown[:5]) or "none"}.')
    stimuli, bad = [], []
    for folder in folders:
        for path in sorted(p for p in folder.iterdir() if is_image(p)):
            match = STIMULUS_NAME.match(path.stem)
            if not match or match.group(1) != folder.name or match.group(3) not in CATEGORY_INDICES:
                bad.append(f'{folder.name}/{path.name}')
            else:
                stimuli.append(Stimulus(path, match.group(1), match.group(3)))
    if bad:
        raise LayoutError(
            f'cue-conflict folder {root}: {len(bad)} file(s) do not parse as <category>/<shape><n>-<texture><m>.png '
            f'with the folder\'s shape and a known texture category: {", ".join(bad[:8])}'
            f'{" ..." if len(bad) > 8 else ""}.')
    if not stimuli:
        raise LayoutError(f'cue-conflict folder {root} holds no images.')
    return stimuli


def category_scores(logits: torch.Tensor) -> torch.Tensor:
    """ (N, 16) scores in `CATEGORIES` order: mean softmax probability over each category's ImageNet classes. """
    if logits.shape[1] != 1000:
        raise ValueError(f'shape bias maps 1000 ImageNet outputs to 16 categories; this model has {logits.shape[1]}')
    probabilities = logits.float().softmax(dim=1)
    return torch.stack([probabilities[:, list(CATEGORY_INDICES[c])].mean(dim=1) for c in CATEGORIES], dim=1)


def shape_bias(stimuli: Sequence[Stimulus], decisions: Sequence[str]) -> Dict[str, object]:
    """ Overall and per-category shape bias (fractions; None where no shape or texture decision) and the counts. """
    per: Dict[str, List[int]] = {c: [0, 0] for c in CATEGORIES}  # shape hits, texture hits
    for stimulus, decision in zip(stimuli, decisions):
        if stimulus.shape == stimulus.texture:
            continue
        if decision == stimulus.shape:
            per[stimulus.shape][0] += 1
        elif decision == stimulus.texture:
            per[stimulus.shape][1] += 1
    shape, texture = sum(v[0] for v in per.values()), sum(v[1] for v in per.values())
    conflicting = sum(1 for s in stimuli if s.shape != s.texture)
    return {
        'shape_bias': shape / (shape + texture) if shape + texture else None,
        'shape_decisions': shape, 'texture_decisions': texture, 'stimuli': conflicting,
        'per_category': {c: (v[0] / (v[0] + v[1]) if v[0] + v[1] else None) for c, v in per.items()}}
