"""ImageNet-P (Hendrycks & Dietterich, ICLR 2019): flip rate (FR / mFR) and top-5 distance (T5D / mT5D) on
perturbation sequences, computed as hendrycks/robustness `ImageNet-P/test.py` does (difficulty 1).

Layout: `<root>/<perturbation>/<class>/<sequence>/<frame>` - each sequence a folder of its frames, in file-name order
(the released `.mp4` files decoded to frames; no video decoder is needed here, and a video file is refused with that
advice). Perturbations: gaussian_noise, shot_noise, motion_blur, zoom_blur, snow, brightness, translate, rotate, tilt,
scale, and the extra speckle_noise, gaussian_blur, spatter, shear; noise ones also as `<name>_2` / `<name>_3`.

Per sequence, with predictions p_0..p_T and per-class ranks (1 = top) r_0..r_T:
* noise perturbations (name contains 'noise') compare every frame with the first, the others each frame with the
  one before it;
* FR: share of compared pairs whose top-1 differs; T5D: for the first frame's top-5 classes in its order, with
  `rank_i` their ranks in the other frame, `sum_i |i - min(rank_i - 1, 5)|` (i = 0..4), as `dist(..., 'top5')`;
* a perturbation's FR / T5D is the mean over its sequences of the per-sequence mean.
mFR / mT5D: the mean over perturbations of FR_p / FR_p^baseline x 100 (likewise T5D). The original normaliser is
AlexNet's FR / T5D from the paper, which could not be verified here: normalised by `--baseline` only, and otherwise
the raw mean FR / T5D are reported (never labelled mFR).
"""
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch

from .layouts import LayoutError, is_image

PERTURBATIONS = ('gaussian_noise', 'shot_noise', 'motion_blur', 'zoom_blur', 'snow', 'brightness', 'translate',
                 'rotate', 'tilt', 'scale', 'speckle_noise', 'gaussian_blur', 'spatter', 'shear')
VIDEO_SUFFIXES = ('.mp4', '.avi', '.mkv', '.webm')


def known_perturbation(name: str) -> bool:
    base, _, level = name.rpartition('_')
    return name in PERTURBATIONS or ('noise' in base and base in PERTURBATIONS and level in ('2', '3'))


def list_sequences(root: Path) -> Dict[str, List[Tuple[int, List[Path]]]]:
    """ perturbation -> [(class index, frames)], checked: known names, frame folders of >= 2 images, the same class
    folders in every perturbation. """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f'ImageNet-P folder {root} does not exist (or is not a folder).')
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith('.'))
    unknown = [n for n in names if not known_perturbation(n)]
    if unknown or not names:
        raise LayoutError(f'ImageNet-P folder {root}: {", ".join(unknown[:5]) or "no folders"} - expected '
                          f'<root>/<perturbation>/<class>/<sequence>/<frame> with perturbations from: '
                          f'{", ".join(PERTURBATIONS)} (noise ones also _2 / _3).')
    found, classes = {}, None
    for name in names:
        class_names = sorted(p.name for p in (root / name).iterdir() if p.is_dir())
        if classes is None:
            classes = class_names
        elif class_names != classes:
            raise LayoutError(f'ImageNet-P folder {root / name} has other class folders than {root / names[0]}.')
        found[name] = []
        for index, class_name in enumerate(class_names):
            for entry in sorted((root / name / class_name).iterdir()):
                if entry.suffix.lower() in VIDEO_SUFFIXES:
                    raise LayoutError(f'{entry} is a video: decode each ImageNet-P video into a folder of its frames '
                                      f'(<sequence>/<frame>.png, e.g. with ffmpeg) and pass the folder of those.')
                frames = sorted(p for p in entry.iterdir() if is_image(p)) if entry.is_dir() else []
                if len(frames) < 2:
                    raise LayoutError(f'ImageNet-P sequence {entry} should be a folder of at least 2 frames.')
                found[name].append((index, frames))
        if not found[name]:
            raise LayoutError(f'ImageNet-P perturbation folder {root / name} holds no sequences.')
    return found


def _pairs(length: int, noise: bool) -> List[Tuple[int, int]]:
    return [(0, j) if noise else (j - 1, j) for j in range(1, length)]


def top5_distance(first: torch.Tensor, second: torch.Tensor) -> int:
    """ `dist(sigma, 'top5')` of the reference code for two logit vectors. """
    order = first.argsort(descending=True)[:5]
    ranks = torch.empty_like(second, dtype=torch.long)
    ranks[second.argsort(descending=True)] = torch.arange(1, len(second) + 1)
    return sum(abs(i - min(int(ranks[c]) - 1, 5)) for i, c in enumerate(order.tolist()))


def sequence_metrics(logits: Sequence[torch.Tensor], noise: bool) -> Tuple[float, float]:
    """ (flip rate, mean top-5 distance) of one sequence's frame logits. """
    pairs = _pairs(len(logits), noise)
    flips = [int(logits[a].argmax() != logits[b].argmax()) for a, b in pairs]
    distances = [top5_distance(logits[a], logits[b]) for a, b in pairs]
    return sum(flips) / len(flips), sum(distances) / len(distances)


def perturbation_metrics(sequences: Sequence[Sequence[torch.Tensor]], name: str) -> Dict[str, float]:
    """ FR and T5D of one perturbation: means over its sequences. """
    values = [sequence_metrics(s, 'noise' in name) for s in sequences]
    return {'flip_rate': sum(v[0] for v in values) / len(values),
            'top5_distance': sum(v[1] for v in values) / len(values), 'sequences': len(values)}


def normalised_means(perturbations: Dict[str, Dict[str, float]], baseline: Dict[str, Dict[str, float]]) -> Dict:
    """ mFR and mT5D (%) relative to `baseline`'s per-perturbation numbers (each = 100 for the baseline). """
    absent = sorted(set(perturbations) - set(baseline))
    if absent:
        raise ValueError(f'the baseline has no ImageNet-P numbers for {", ".join(absent)}; it cannot normalise them')
    out = {}
    for key, metric in (('mfr', 'flip_rate'), ('mt5d', 'top5_distance')):
        ratios = []
        for name, values in perturbations.items():
            if baseline[name][metric] <= 0:
                raise ValueError(f'the baseline\'s {metric} on {name} is 0, so the normalised mean is undefined')
            ratios.append(values[metric] / baseline[name][metric])
        out[key] = 100 * sum(ratios) / len(ratios)
    return out


def apply_baseline(results: Dict, baseline_results: Dict) -> None:
    """ Store mFR / mT5D relative to `baseline_results`' ImageNet-P numbers in `results['imagenet_p']['summary']`
    (a note instead when the baseline lacks some perturbation). """
    section, reference = results.get('imagenet_p'), baseline_results.get('imagenet_p')
    if not section or not reference:
        return
    summary = section.setdefault('summary', {})
    try:
        summary.update(normalised_means(section['perturbations'], reference['perturbations']),
                       baseline=baseline_results['model'])
    except ValueError as e:
        summary['note'] = str(e)
