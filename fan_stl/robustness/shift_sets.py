"""Clean distribution-shift sets as timm's results tables carry them: each one's images, labels and layout check.

* ImageNet-ReaL (Beyer et al. 2020): the ImageNet val images (`<wnid>/ILSVRC2012_val_<8 digits>.<ext>`) scored
  against the reassessed labels `real.json` (a list of 50,000 lists of ImageNet-1k indices, image `n` at position
  `n - 1`; timm ships it). As timm's `RealLabelsImagenet`: an image counts when a top-k prediction is among its
  labels; images whose label list is empty are left out.
* ImageNetV2 (Recht et al. 2019), the three variants (matched-frequency, threshold0.7, top-images): class folders
  named by the ImageNet-1k class *index* (`<root>/<0..999>/<image>`), so the target is the folder's number.
* ImageNet-Sketch (Wang et al. 2019): an ImageFolder of ImageNet-1k wnids, scored by the 1000-way head.
* "-clean" baselines: the ImageNet val images of the 200 ImageNet-A (or -R) classes, logits masked to those 200 (as
  timm's `--valid-labels` runs behind `results-imagenet-{a,r}-clean.csv`).

Every set needs a 1000-class ImageNet head; a folder or label file that does not fit is refused before any model runs.
"""
import json
import re
from pathlib import Path
from typing import List, Sequence, Tuple

import torch

from .class_maps import IMAGENET_SUBSETS, LabelMap, imagenet1k_wnids, imagenet_subset_label_map
from .images import list_images
from .layouts import LayoutError, is_image, list_classes

VAL_NAME = re.compile(r'^ILSVRC2012_val_(\d{8})$')
V2_VARIANTS = ('matched-frequency', 'threshold0.7', 'top-images')
Samples = List[Tuple[Path, int]]


def require_imagenet_head(num_classes: int, what: str) -> None:
    if num_classes != 1000:
        raise ValueError(f'{what} is scored by a 1000-class ImageNet head; this model has {num_classes} outputs. '
                         f'Use an ImageNet-1k model (e.g. `--pretrained`).')


def _imagenet_wnid_folders(root: Path, what: str) -> List[str]:
    classes = list_classes(root, what)
    foreign = sorted(set(classes) - set(imagenet1k_wnids()))
    if foreign:
        raise LayoutError(f'{what} {root}: {len(foreign)} class folder(s) are not ImageNet-1k wnids '
                          f'({", ".join(foreign[:5])}); expected <root>/<wnid>/<image>.')
    return classes


# --- ImageNet-ReaL ---------------------------------------------------------------------------------------------------

def default_real_labels() -> Path:
    """ timm's copy of real.json (google-research/reassessed-imagenet). """
    import timm.data
    return Path(timm.data.__file__).with_name('_info') / 'imagenet_real_labels.json'


def load_real_labels(path: Path) -> List[List[int]]:
    """ A real.json: one list of ImageNet-1k indices (0-999) per val image; one clear error for anything else. """
    try:
        labels = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f'ReaL label file {path} cannot be read as JSON ({e}); pass real.json') from None
    if not isinstance(labels, list) or not all(
            isinstance(entry, list) and all(isinstance(i, int) and 0 <= i < 1000 for i in entry) for entry in labels):
        raise ValueError(f'ReaL label file {path} is not a list of lists of ImageNet-1k class indices (0-999), one '
                         f'per validation image, as real.json is.')
    return labels


def real_samples(root: Path, labels: Sequence[Sequence[int]]) -> Tuple[Samples, List[List[int]]]:
    """ The val images of `root` (folder class index) and each one's ReaL labels, checked against the label file. """
    classes = _imagenet_wnid_folders(Path(root), 'ImageNet-ReaL folder')
    samples = list_images(root, classes)
    bad = [p.name for p, _ in samples if not VAL_NAME.match(p.stem)]
    if bad:
        raise LayoutError(f'ImageNet-ReaL folder {root}: {len(bad)} image(s) are not named ILSVRC2012_val_<8 digits> '
                          f'({", ".join(bad[:5])}); ReaL labels are looked up by that number.')
    numbers = [int(VAL_NAME.match(p.stem).group(1)) for p, _ in samples]
    beyond = [p.name for (p, _), n in zip(samples, numbers) if not 1 <= n <= len(labels)]
    if beyond:
        raise ValueError(f'the ReaL label file has {len(labels)} entries, but {root} holds image(s) beyond them '
                         f'({", ".join(beyond[:5])}): this label file does not fit the dataset.')
    return samples, [list(labels[n - 1]) for n in numbers]


def real_accuracy(logits: torch.Tensor, labels: Sequence[Sequence[int]]) -> Tuple[float, float, int]:
    """ (top-1 %, top-5 %, images scored): a hit when a top-k prediction is among the image's labels; images with
    no label are left out (timm's `RealLabelsImagenet`). """
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices.tolist()
    hits = [(bool(set(t[:1]) & set(lab)), bool(set(t[:5]) & set(lab))) for t, lab in zip(top, labels) if lab]
    if not hits:
        raise ValueError('no image of the ReaL folder has a ReaL label; nothing to score')
    return 100 * sum(h[0] for h in hits) / len(hits), 100 * sum(h[1] for h in hits) / len(hits), len(hits)


# --- ImageNetV2 ------------------------------------------------------------------------------------------------------

def v2_variant(root: Path) -> str:
    """ The ImageNetV2 variant named by the folder (e.g. `imagenetv2-matched-frequency-format-val`). """
    name = Path(root).resolve().name
    found = [v for v in V2_VARIANTS if v in name]
    if len(found) != 1:
        raise LayoutError(f'cannot tell the ImageNetV2 variant of {root}: its name should contain one of '
                          f'{", ".join(V2_VARIANTS)} (as the released folders imagenetv2-<variant>-format-val do).')
    return found[0]


def v2_samples(root: Path) -> Samples:
    """ Images of an ImageNetV2 folder with their ImageNet-1k index (the class folder's number). """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f'ImageNetV2 folder {root} does not exist (or is not a folder).')
    folders = [p for p in root.iterdir() if p.is_dir() and not p.name.startswith('.')]
    wrong = sorted(p.name for p in folders if not (p.name.isdigit() and 0 <= int(p.name) < 1000))
    if wrong or not folders:
        raise LayoutError(f'ImageNetV2 folder {root}: expected class folders named 0-999 (the ImageNet-1k index); '
                          f'found {", ".join(wrong[:5]) or "none"}.')
    samples = [(path, int(f.name)) for f in sorted(folders, key=lambda p: int(p.name))
               for path in sorted(q for q in f.rglob('*') if is_image(q))]
    if not samples:
        raise LayoutError(f'ImageNetV2 folder {root} holds no images.')
    return samples


IDENTITY_MAP = LabelMap('class folders numbered by ImageNet-1k index = model outputs')


# --- ImageNet-Sketch and the 200-class clean baselines ---------------------------------------------------------------

def sketch_classes(root: Path) -> List[str]:
    return _imagenet_wnid_folders(Path(root), 'ImageNet-Sketch folder')


def subset_clean(root: Path, subset: str, num_classes: int) -> Tuple[Samples, LabelMap]:
    """ The val images of the 200 classes of `subset` ('imagenet_a' / 'imagenet_r') and the 200-logit mask. """
    classes = _imagenet_wnid_folders(Path(root), f'{subset}-clean folder (ImageNet val)')
    kept = [c for c in classes if c in IMAGENET_SUBSETS[subset]]
    if not kept:
        raise LayoutError(f'{root} holds none of the 200 {subset} classes; the -clean baseline needs ImageNet val.')
    return list_images(root, kept), imagenet_subset_label_map(kept, subset, num_classes)

