"""A paired student source: the student view of stage stl reads the same-named image from another tree.

`--student-data-dir DIR` names a tree laid out like `--data-dir` (a Stylized-ImageNet or DeepAugment copy of the
training set): for a training image `<data-dir>/train/<class>/<name>.<ext>` the student reads
`DIR/train/<class>/<name>.*` (the same relative path; any image extension, since stylised copies are often re-encoded;
`DIR/<class>/<name>.*` when DIR has no split folder), resized to the original's size, so that the teacher reads the
original and the crop box and flips are shared exactly (`PairedViewTransform(img, student_img)`).

`StudentSource(dataset, folder)` checks, when it is made (before any training), that every training image has its
copy: the missing ones are counted and the first are listed.
"""
import os
from pathlib import Path
from typing import Dict, List

from PIL import Image

__all__ = ['StudentSource']

_LISTED = 10


class StudentSource:
    """ `source(index, image) -> the student's copy of training image `index`` (see the module docstring). """

    def __init__(self, dataset, folder: str):
        reader = getattr(dataset, 'reader', None)
        samples = getattr(reader, 'samples', None)
        if samples is None:
            raise ValueError(f'--student-data-dir needs an image-folder training set (timm\'s folder reader, with '
                             f'file paths); got {type(reader or dataset).__name__}.')
        root = Path(reader.root)
        base = Path(folder)
        if not base.is_dir():
            raise ValueError(f'--student-data-dir {folder}: no such folder.')
        if (base / root.name).is_dir():
            base = base / root.name
        stems: Dict[Path, Dict[str, str]] = {}
        self.paths: List[str] = []
        missing = []
        for path, _ in samples:
            relative = Path(os.path.relpath(path, root))
            folder_here = base / relative.parent
            if folder_here not in stems:
                stems[folder_here] = {p.stem: str(p) for p in folder_here.iterdir()} if folder_here.is_dir() else {}
            found = stems[folder_here].get(relative.stem)
            if found is None:
                missing.append(str(relative))
            self.paths.append(found)
        if missing:
            raise ValueError(
                f'--student-data-dir {base}: {len(missing)} of {len(samples)} training images have no same-named '
                f'copy there, e.g. {", ".join(missing[:_LISTED])}{" ..." if len(missing) > _LISTED else ""}. The '
                f'student tree must mirror the training tree (class folders, file names; any image extension).')

    def __call__(self, index: int, image: Image.Image) -> Image.Image:
        with Image.open(self.paths[index]) as copy:
            copy = copy.convert(image.mode)
        return copy if copy.size == image.size else copy.resize(image.size, Image.BICUBIC)
