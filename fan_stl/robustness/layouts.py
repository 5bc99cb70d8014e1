"""Find and check dataset folders: a plain ImageFolder, and the ImageNet-C grid `<root>/<corruption>/<1..5>/<class>/`
of any corruption family (`families`: ImageNet-C, -C-bar, -3DCC), recognised by its corruption names.

Every problem is reported as a `LayoutError` that names the folder, what was expected and how to fix it, before any
model runs.
"""
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from timm.data.readers.img_extensions import get_img_extensions
from timm.utils.misc import natural_key

from .families import FAMILIES, IMAGENET_C, CorruptionFamily, family_of_name, identify_family
from .metrics import SEVERITIES

IMAGENET_C_LAYOUT = '<root>/<corruption>/<severity 1-5>/<class>/<image>'


class LayoutError(ValueError):
    """ A dataset folder is missing or not laid out as expected. """


def is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in get_img_extensions()


def _has_image(folder: Path) -> bool:
    return any(is_image(p) for p in folder.rglob('*'))


def _subfolders(folder: Path) -> List[str]:
    """ Visible sub-folder names in timm's class order (natural sort, so 'c2' < 'c10'; plain sort for wnids). """
    return sorted((p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith('.')), key=natural_key)


def list_classes(root: Path, what: str = 'dataset') -> List[str]:
    """ Class-folder names of an ImageFolder `root` in timm's label order, checking that each holds images. """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f'{what} folder {root} does not exist (or is not a folder).')
    classes = _subfolders(root)
    if not classes:
        loose = sum(1 for p in root.iterdir() if is_image(p))
        if loose:
            raise LayoutError(
                f'{what} folder {root} holds {loose} images but no class folders; the layout is '
                f'<root>/<class>/<image>: move the images into one sub-folder per class.')
        raise LayoutError(
            f'{what} folder {root} is empty: expected class sub-folders with images (<root>/<class>/<image>).')
    empty = [c for c in classes if not _has_image(root / c)]
    if empty:
        raise LayoutError(
            f'{what} folder {root}: {len(empty)} class folder(s) hold no images ({", ".join(empty[:5])}); add the '
            f'images or remove the folders (an empty class would shift every later class index).')
    return classes


@dataclass
class ImageNetCLayout:
    """ The cells found under an ImageNet-C root and the class list they share. """
    root: Path
    cells: Dict[str, Dict[int, Path]]
    classes: List[str]
    family: CorruptionFamily = IMAGENET_C

    def cell_names(self) -> List[str]:
        return [f'{c}/{s}' for c, severities in self.cells.items() for s in severities]


def discover_imagenet_c(root: Path, corruptions: Optional[Sequence[str]] = None) -> ImageNetCLayout:
    """ Check an ImageNet-C style folder and return its cells; `corruptions` (default: all present) must exist. """
    root = Path(root)
    if not root.is_dir():
        raise LayoutError(f'ImageNet-C folder {root} does not exist (or is not a folder).')
    names = _subfolders(root)
    if names and set(names) <= {str(s) for s in SEVERITIES}:
        raise LayoutError(
            f'{root} holds severity folders ({", ".join(names)}), so it is one corruption, not an ImageNet-C root: '
            f'pass its parent folder (layout {IMAGENET_C_LAYOUT}).')
    if not names:
        raise LayoutError(f'ImageNet-C folder {root} is empty: expected {IMAGENET_C_LAYOUT}.')
    known = [n for n in names if family_of_name(n) is not None]
    every_name = [c for f in FAMILIES.values() for c in f.names]
    near_misses = [n for n in names if difflib.get_close_matches(n.lower(), every_name, n=1, cutoff=0.6)]
    severity_names = {str(v) for v in SEVERITIES}
    graded = any(set(_subfolders(root / n)) & severity_names for n in names[:3])
    if not known and not near_misses and not graded and all(_has_image(root / n) for n in names[:3]):
        raise LayoutError(
            f'{root} looks like a plain ImageFolder (<root>/<class>/<image>), not ImageNet-C ({IMAGENET_C_LAYOUT}). '
            f'Make its corrupted copy with `python -m fan_stl corrupt {root} <dst>`, or evaluate it as clean data.')
    try:
        family = identify_family(names, f'corruption folder {root} (layout {IMAGENET_C_LAYOUT})')
    except ValueError as e:
        raise LayoutError(str(e)) from None
    if corruptions is not None:
        absent = [c for c in corruptions if c not in names]
        if absent:
            raise LayoutError(f'ImageNet-C folder {root} lacks the requested corruption(s): {", ".join(absent)}.')
        names = [c for c in family.names if c in corruptions]

    cells: Dict[str, Dict[int, Path]] = {}
    classes: Optional[List[str]] = None
    for corruption in sorted(names, key=family.names.index):
        folder = root / corruption
        severities = _subfolders(folder)
        wrong = [s for s in severities if s not in {str(v) for v in SEVERITIES}]
        if wrong or not severities:
            raise LayoutError(
                f'{folder} should hold severity folders 1-5 (layout {IMAGENET_C_LAYOUT}); found '
                f'{", ".join(severities) or "none"}.')
        cells[corruption] = {}
        for severity in sorted(int(s) for s in severities):
            cell = folder / str(severity)
            if not any(cell.iterdir()):
                raise LayoutError(
                    f'severity folder {cell} is empty (an interrupted `python -m fan_stl corrupt` run?): re-run the '
                    f'corrupt command, which resumes, or delete the folder.')
            cell_classes = list_classes(cell, what='ImageNet-C cell')
            if classes is None:
                classes = cell_classes
            elif cell_classes != classes:
                extra, lacking = sorted(set(cell_classes) - set(classes)), sorted(set(classes) - set(cell_classes))
                raise LayoutError(
                    f'ImageNet-C cell {cell} has different classes from the first cell '
                    f'(extra: {", ".join(extra[:5]) or "-"}; missing: {", ".join(lacking[:5]) or "-"}); every cell '
                    f'must hold the same class folders.')
            cells[corruption][severity] = cell
    return ImageNetCLayout(root, cells, classes, family)
