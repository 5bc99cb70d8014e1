"""Robustness in mIoU: a segmentation model on a clean CamVid split and its CamVid-C cells, resumable.

Results are one JSON file: clean mIoU, mIoU per corruption x severity, and a summary (mean corrupted mIoU over the
cells, per-corruption means over severities, and the ratio mean corrupted / clean mIoU, the numbers FAN reports for
Cityscapes-C). The file's identity is the model's weights (sha256), its name, the split's file list, the input size,
the corruption seed / format and `source`; a rerun with the same identity resumes, skipping the cells it has, and
stored results of anything else are refused (`ResultsMismatchError`) unless `overwrite` discards them. Corrupted
images come from a written CamVid-C tree (`camvid_c`) or are made on the fly, the very same images either way.
"""
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from fan_stl.robustness.corrupt import check_backend
from fan_stl.robustness.evaluate import stored_results, weights_digest
from fan_stl.robustness.images import file_list_fingerprint
from fan_stl.utils.atomic import write_json_atomic

from .corrupt import DEFAULT_BACKEND, cell_folder, split_corruption, write_camvid_c
from .data import CLASSES, NUM_CLASSES, VOID, CamVid, list_pairs
from .metrics import ConfusionMatrix
from .models import input_multiple

RESULTS_FORMAT = 1
EVAL_RULE = ('mIoU over all pixels of the split (one confusion matrix), void (11) ignored, classes absent from labels '
             'and predictions left out of the mean; images resized to the input size, masks nearest')


@dataclass(frozen=True)
class SegEvalSettings:
    size: Tuple[int, int] = (352, 480)  # height, width
    split: str = 'test'
    batch_size: int = 4
    workers: int = 0
    device: str = 'cpu'
    limit: Optional[int] = None  # first `limit` images only (quick runs)
    seed: int = 0  # of the random corruptions
    image_format: str = 'png'  # of the corrupted images (as written, or made on the fly)
    backend: str = DEFAULT_BACKEND  # the corruption generator: 'torch' or 'imagecorruptions'


def predict_miou(model: nn.Module, dataset: CamVid, settings: SegEvalSettings, desc: str = 'clean',
                 progress: bool = True) -> Dict[str, Any]:
    """ mIoU, pixel accuracy and per-class IoU of `model` on `dataset`. """
    loader = DataLoader(dataset, batch_size=settings.batch_size, num_workers=settings.workers)
    matrix = ConfusionMatrix(NUM_CLASSES, VOID)
    model.eval()
    with torch.inference_mode():
        for x, y in tqdm(loader, desc=desc, leave=False, disable=not progress):
            logits = model(x.to(settings.device))
            if not torch.isfinite(logits).all():
                raise ValueError(f'{desc}: the model produced NaN / inf logits; check its weights and the input')
            if logits.shape[1] != NUM_CLASSES:
                raise ValueError(f'the model predicts {logits.shape[1]} classes; CamVid has {NUM_CLASSES} (+ void)')
            matrix.update(logits.argmax(1).cpu(), y)
    return {**matrix.summary(list(CLASSES)), 'num_images': len(dataset)}


def summarize(results: Dict[str, Any]) -> Dict[str, Any]:
    """ Mean corrupted mIoU over the cells, per corruption (mean over its severities), and its ratio to clean. """
    cells = results.get('cells', {})
    per_corruption: Dict[str, list] = {}
    for key, cell in cells.items():
        per_corruption.setdefault(key.split('/')[0], []).append(cell['miou'])
    clean = results.get('clean', {}).get('miou')
    mean = sum(c['miou'] for c in cells.values()) / len(cells) if cells else None
    return {
        'clean_miou': clean,
        'mean_corrupted_miou': mean,
        'ratio_to_clean': mean / clean if mean is not None and clean else None,
        'per_corruption': {c: sum(v) / len(v) for c, v in per_corruption.items()},
        'cells': len(cells),
    }


def _identity(model: nn.Module, name: str, root: Path, settings: SegEvalSettings, camvid_c: Optional[Path],
              source: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    pairs = list_pairs(root, settings.split)[:settings.limit]
    files = [p for pair in pairs for p in pair]
    identity = {
        'format': RESULTS_FORMAT, 'model': name, 'weights_sha256': weights_digest(model), 'source': source or {},
        'data': str(Path(root).resolve()), 'split': settings.split, 'limit': settings.limit,
        'files_sha256': file_list_fingerprint(root, files), 'size': list(settings.size),
        'corruption': {'seed': settings.seed, 'format': settings.image_format, 'backend': settings.backend,
                       'camvid_c': str(Path(camvid_c).resolve()) if camvid_c else 'made on the fly'},
        'eval_rule': EVAL_RULE}
    return identity


def evaluate_segmentation(
        model: nn.Module,
        name: str,
        root: Path,
        results_path: Path,
        corruptions: Sequence[str] = (),
        severities: Sequence[int] = (1, 2, 3, 4, 5),
        settings: Optional[SegEvalSettings] = None,
        camvid_c: Optional[Path] = None,
        source: Optional[Dict[str, Any]] = None,
        overwrite: bool = False,
        progress: bool = True,
        on_cell_done: Optional[Callable[[str], None]] = None,
) -> Dict[str, Any]:
    """ Clean and corrupted mIoU of `model` on CamVid `root`, resuming from and saving to `results_path` (JSON).

    `camvid_c`: a CamVid-C tree to read (its missing files are written first, see `write_camvid_c`); None makes the
    corrupted images on the fly.
    """
    settings = settings or SegEvalSettings()
    results_path = Path(results_path)
    model = model.to(settings.device)
    dataset_args = dict(root=root, split=settings.split, size=settings.size, multiple=input_multiple(model),
                        limit=settings.limit)
    CamVid(**dataset_args)  # every input problem (size, missing masks) fails here, before any work
    check_backend(settings.backend)
    identity = _identity(model, name, root, settings, camvid_c, source)
    results = stored_results(results_path, identity, overwrite) or {'model': name, 'identity': identity, 'cells': {}}
    results['settings'] = asdict(settings)

    def save() -> None:
        results['summary'] = summarize(results)
        write_json_atomic(results_path, results)

    if 'clean' not in results:
        results['clean'] = predict_miou(model, CamVid(**dataset_args), settings, 'clean', progress)
        save()
    for corruption in corruptions:
        for severity in severities:
            key = f'{corruption}/{severity}'
            if key in results['cells']:
                continue
            if camvid_c is not None:
                write_camvid_c(root, camvid_c, [corruption], [severity], settings.split, settings.seed,
                               settings.image_format, settings.limit, settings.backend, progress=progress)
                dataset = CamVid(**dataset_args, images=cell_folder(camvid_c, corruption, severity))
            else:
                dataset = CamVid(**dataset_args, corruption=split_corruption(
                    root, settings.split, corruption, severity, settings.seed, settings.image_format, settings.backend))
            results['cells'][key] = predict_miou(model, dataset, settings, key, progress)
            save()
            if on_cell_done is not None:
                on_cell_done(key)
    save()
    return results


def format_summary(results: Dict[str, Any]) -> str:
    """ A few lines for the terminal: clean, mean corrupted mIoU and their ratio. """
    s = results['summary']
    fmt = lambda v: '-' if v is None or (isinstance(v, float) and math.isnan(v)) else f'{v:.2f}'  # noqa: E731
    lines = [f'{results["model"]}: clean mIoU {fmt(s["clean_miou"])}',
             f'mean corrupted mIoU {fmt(s["mean_corrupted_miou"])} over {s["cells"]} cells, '
             f'ratio to clean {fmt(s["ratio_to_clean"])}']
    lines += [f'  {c:<18} {fmt(v)}' for c, v in s['per_corruption'].items()]
    return '\n'.join(lines)
