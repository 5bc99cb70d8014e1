"""CamVid-C: the ImageNet-C corruptions applied to a CamVid split's images, labels untouched.

A class-free tree mode of `fan_stl.robustness.corrupt`, using its corruption functions per image:
`<dst>/<corruption>/<severity>/<stem>.<format>`, masks read from the clean `<root>/<split>annot/`. Each image is
deterministic given the seed, its `<split>/<stem>.<format>` key, the corruption and severity, so `SplitCorruption`
makes in memory exactly the file `write_camvid_c` writes (evaluation on the fly, no copies needed). PNG (lossless,
the default here) keeps the corruption alone; 'jpg' adds ImageNet-C's JPEG quality 85.
"""
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Tuple

from PIL import Image

from fan_stl.robustness.corrupt import check_image_size, encoded_corruption
from fan_stl.robustness.images import read_rgb

from .data import list_pairs


def _key(split: str, image_name: str, image_format: str) -> str:
    return f'{split}/{Path(image_name).stem}.{image_format}'


@dataclass(frozen=True)
class SplitCorruption:
    """ A `CamVid` corruption: the image `write_camvid_c` writes for this cell, made in memory. """
    corruption: str
    severity: int
    seed: int = 0
    image_format: str = 'png'

    def __call__(self, image: Image.Image, key: str) -> Image.Image:
        split, name = key.split('/', 1)
        check_image_size(image, Path(key))
        data = encoded_corruption(image, _key(split, name, self.image_format), self.corruption, self.severity,
                                  self.seed, self.image_format)
        with Image.open(io.BytesIO(data)) as decoded:
            return decoded.convert('RGB')


def cell_folder(dst: Path, corruption: str, severity: int) -> Path:
    return Path(dst) / corruption / str(severity)


def write_camvid_c(
        root: Path,
        dst: Path,
        corruptions: Sequence[str],
        severities: Sequence[int],
        split: str = 'test',
        seed: int = 0,
        image_format: str = 'png',
        limit: Optional[int] = None,
) -> Tuple[int, int]:
    """ Write the missing files of the CamVid-C tree of `split` under `dst`; (written, already there). """
    pairs = list_pairs(root, split)[:limit]
    written = skipped = 0
    for corruption in corruptions:
        for severity in severities:
            folder = cell_folder(dst, corruption, severity)
            folder.mkdir(parents=True, exist_ok=True)
            for image_path, _ in pairs:
                out = folder / f'{image_path.stem}.{image_format}'
                if out.exists():
                    skipped += 1
                    continue
                image = read_rgb(image_path)
                check_image_size(image, image_path)
                data = encoded_corruption(image, _key(split, image_path.name, image_format), corruption, severity,
                                          seed, image_format)
                fd, tmp = tempfile.mkstemp(dir=folder, prefix='.camvid-c-', suffix='.tmp')
                try:
                    with os.fdopen(fd, 'wb') as f:
                        f.write(data)
                    os.replace(tmp, out)
                except BaseException:
                    os.unlink(tmp)
                    raise
                written += 1
    return written, skipped
