"""RobustBench's ImageNet corruption protocol (`--protocol robustbench`) and its `model_info` JSON.

As robustbench 1.1.1 (`eval.py`, `data.py`, `loaders.py`, MIT) computes it:

* every set (clean val, each ImageNet-C / -3DCC cell) is scored on the same fixed 5,000 validation images, the list
  `helper_files/imagenet_test_image_ids.txt` (shipped here as `data/robustbench_imagenet_test_image_ids.txt`, source
  and licence in `data/README.md`; `--subset-list FILE` takes another);
* clean images go through the model's own preprocessing; corrupted ones are only resized to the input size
  (`Res224`: `Resize([224, 224])`, bilinear, no crop), then normalised as the model expects;
* `corruptions_acc` is the mean top-1 accuracy over all corruptions x 5 severities; `corruptions_mce` is, per
  corruption, `mean_s(1 - acc_s) / mean_s(1 - acc^AlexNet_s)`, averaged over corruptions - the ImageNet-C CE of
  `metrics.mce`, with AlexNet's errors *measured on the subset*. Those AlexNet numbers sit in RobustBench's repository
  (`model_info/imagenet/corruptions/unaggregated_results*.csv`), not in its wheel, so they are not shipped: here the
  mCE is normalised by `--baseline` (e.g. an AlexNet results file evaluated with this protocol) or not computed.

Images of the list that the folder lacks are counted and listed, and refused unless `allow_missing`.
"""
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .families import IMAGENET_3DCC, IMAGENET_C
from .images import list_images

SHIPPED_SUBSET = Path(__file__).with_name('data') / 'robustbench_imagenet_test_image_ids.txt'
SHIPPED_SOURCE = 'robustbench 1.1.1 helper_files/imagenet_test_image_ids.txt (MIT)'
# robustbench.utils.ModelInfo's fields, in its order (robustbench 1.1.1)
MODEL_INFO_FIELDS = (
    'link', 'name', 'authors', 'additional_data', 'number_forward_passes', 'dataset', 'venue', 'architecture', 'eps',
    'clean_acc', 'reported', 'corruptions_acc', 'corruptions_acc_3d', 'corruptions_mce', 'corruptions_mce_3d',
    'autoattack_acc', 'footnote')
MODEL_INFO_NUMBERS = ('clean_acc', 'corruptions_acc', 'corruptions_acc_3d', 'corruptions_mce', 'corruptions_mce_3d')
Samples = List[Tuple[Path, int]]


class SubsetMissingError(ValueError):
    """ The image folder lacks images of the subset list. """


@dataclass(frozen=True)
class SubsetProtocol:
    """ A fixed image subset (`<class>/<file>` entries, matched by class and file stem) and RobustBench's rules. """
    ids: Tuple[str, ...]
    source: str
    allow_missing: bool = False
    name: str = 'robustbench'

    @classmethod
    def from_file(cls, path: Optional[Path] = None, allow_missing: bool = False) -> 'SubsetProtocol':
        """ The list at `path` (default: the shipped RobustBench list). """
        path = Path(path) if path is not None else SHIPPED_SUBSET
        try:
            lines = [line.strip() for line in path.read_text().splitlines()]
        except OSError as e:
            raise ValueError(f'cannot read the subset list {path} ({e.strerror or e}); pass an existing file') from None
        ids = tuple(line for line in lines if line)
        bad = [line for line in ids if line.count('/') != 1]
        if bad or not ids:
            raise ValueError(
                f'subset list {path}: expected one `<class folder>/<image file>` a line (as RobustBench\'s '
                f'imagenet_test_image_ids.txt); {"it is empty" if not ids else f"bad lines such as {bad[0]!r}"}.')
        source = SHIPPED_SOURCE if path == SHIPPED_SUBSET else str(path.resolve())
        return cls(ids, source, allow_missing)

    def identity(self) -> Dict[str, Any]:
        return {'name': self.name, 'subset': self.source, 'subset_size': len(self.ids)}

    def select(self, root: Path, classes: Sequence[str]) -> Samples:
        """ The subset's images in `root` with their class index, in list order; missing ones refused (or left out
        with `allow_missing`). """
        by_key = {f'{classes[t]}/{p.stem}': (p, t) for p, t in list_images(root, classes)}
        keys = [f'{entry.split("/")[0]}/{Path(entry.split("/")[1]).stem}' for entry in self.ids]
        missing = [entry for entry, key in zip(self.ids, keys) if key not in by_key]
        if missing and (not self.allow_missing or len(missing) == len(self.ids)):
            raise SubsetMissingError(
                f'{root} lacks {len(missing)} of the {len(self.ids)} images of the subset list ({self.source}): '
                f'{", ".join(missing[:10])}{" ..." if len(missing) > 10 else ""}. Point to the complete folder, or '
                f'pass --allow-missing to score the {len(self.ids) - len(missing)} present ones (not RobustBench\'s '
                f'number then).')
        return [by_key[key] for key in keys if key in by_key]

    def corruption_transform(self, data_config: Mapping[str, Any]) -> Callable:
        """ RobustBench's `Res224` for corrupted images (resize to the input size, no crop), then the model's mean
        and std. """
        from torchvision import transforms
        size = list(data_config['input_size'][1:])
        return transforms.Compose([
            transforms.Resize(size), transforms.ToTensor(),
            transforms.Normalize(data_config['mean'], data_config['std'])])


def _number(value: Optional[float]) -> Optional[str]:
    return None if value is None else str(round(value, 2))


def model_info(results: Mapping[str, Any], **fields: Any) -> Dict[str, Any]:
    """ A RobustBench `model_info` dict (percentages as strings rounded to 2 places, as `update_json` writes them)
    from a results dict evaluated with the RobustBench protocol; `fields` fill the descriptive entries (link, ...). """
    unknown = sorted(set(fields) - set(MODEL_INFO_FIELDS))
    if unknown:
        raise ValueError(f'unknown model_info field(s) {", ".join(unknown)}; fields: {", ".join(MODEL_INFO_FIELDS)}')
    info: Dict[str, Any] = {k: None for k in MODEL_INFO_FIELDS}
    info.update(name=results['model'], dataset='imagenet', architecture=results['identity'].get('architecture'))
    info.update(fields)
    info['clean_acc'] = _number(results.get('clean', {}).get('top1'))
    for family, acc_key, mce_key in ((IMAGENET_C, 'corruptions_acc', 'corruptions_mce'),
                                     (IMAGENET_3DCC, 'corruptions_acc_3d', 'corruptions_mce_3d')):
        summary = results.get(family.key, {}).get('summary', {})
        info[acc_key] = _number(summary.get('mean_corruption_accuracy'))
        info[mce_key] = _number(summary.get('mce'))
    return info


def validate_model_info(info: Mapping[str, Any]) -> None:
    """ Raise `ValueError` unless `info` has exactly RobustBench's ModelInfo fields and its numbers are strings of
    percentages (or None). """
    if list(info) != list(MODEL_INFO_FIELDS):
        raise ValueError(f'model_info fields {list(info)} are not RobustBench\'s {list(MODEL_INFO_FIELDS)}')
    for key in MODEL_INFO_NUMBERS:
        value = info[key]
        if value is None:
            continue
        if not isinstance(value, str) or not (key.endswith('mce') or 0 <= float(value) <= 100):
            raise ValueError(f'model_info {key} must be a percentage as a string, not {value!r}')
    json.dumps(dict(info))
