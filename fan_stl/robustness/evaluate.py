"""Evaluation runner: clean top-1/top-5 on an ImageFolder, the ImageNet-C grid, ImageNet-A / -R, resumable.

Images go through the model's own timm eval transform (`resolve_data_config` + `create_transform`; for FAN models
bicubic with crop_pct 1.0). `evaluate_robustness` keeps one JSON file per model and rewrites it atomically after
every finished cell, so an interrupted run resumes where it stopped and a finished cell is never recomputed.
"""
import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

import torch
from timm.data import ImageDataset, create_transform, resolve_data_config
from torch.utils.data import DataLoader
from tqdm import tqdm

from .class_maps import LabelMap, dataset_label_map, imagenet_subset_label_map
from .layouts import discover_imagenet_c, list_classes
from .metrics import ALEXNET, CorruptionBaseline, ErrorGrid, summarize_corruptions, topk_correct

AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}


@dataclass
class EvalSettings:
    """ How to run the model: batch size, loader workers, device, autocast dtype ('bf16' / 'fp16'), input size. """
    batch_size: int = 64
    workers: int = 2
    device: str = field(default_factory=lambda: 'cuda' if torch.cuda.is_available() else 'cpu')
    amp: Optional[str] = None
    img_size: Optional[int] = None
    progress: bool = True

    def __post_init__(self):
        if self.amp is not None and self.amp not in AMP_DTYPES:
            raise ValueError(f'amp must be one of {", ".join(AMP_DTYPES)} or None, not {self.amp!r}')
        if self.amp == 'fp16' and not str(self.device).startswith('cuda'):
            raise ValueError('fp16 autocast needs a CUDA device; use amp="bf16" or no amp on CPU')

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=AMP_DTYPES[self.amp])


def model_data_config(model: torch.nn.Module, img_size: Optional[int] = None) -> Dict[str, Any]:
    """ The model's timm eval data config, optionally at another square input size. """
    overrides = {'input_size': (3, img_size, img_size)} if img_size else {}
    return resolve_data_config(overrides, model=model)


def model_num_classes(model: torch.nn.Module) -> int:
    num_classes = getattr(model, 'num_classes', None)
    if not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(
            f'cannot tell how many classes {type(model).__name__} predicts (no positive `num_classes`); '
            f'evaluate a timm classification model with a head.')
    return num_classes


def evaluate_imagefolder(
        model: torch.nn.Module,
        root: Path,
        settings: Optional[EvalSettings] = None,
        label_map: Optional[LabelMap] = None,
        desc: str = 'eval',
) -> Dict[str, float]:
    """ Top-1 / top-5 accuracy (%) of `model` on the ImageFolder `root`: `{'top1', 'top5', 'num_images'}`.

    `label_map` defaults to the dataset's classes matched to the model head (`dataset_label_map`).
    """
    settings = settings or EvalSettings()
    classes = list_classes(root)
    label_map = label_map or dataset_label_map(classes, model_num_classes(model))
    dataset = ImageDataset(
        str(root), class_map={c: i for i, c in enumerate(classes)},
        transform=create_transform(**model_data_config(model, settings.img_size)))
    loader = DataLoader(
        dataset, batch_size=settings.batch_size, num_workers=settings.workers, shuffle=False,
        pin_memory=str(settings.device).startswith('cuda'), persistent_workers=False)
    model.eval().to(settings.device)
    correct = {1: 0, 5: 0}
    with torch.inference_mode(), settings.autocast():
        for images, target in tqdm(loader, desc=desc, leave=False, disable=not settings.progress):
            output = model(images.to(settings.device, non_blocking=True))
            if not isinstance(output, torch.Tensor):
                raise TypeError(
                    f'{type(model).__name__} returned {type(output).__name__} in eval mode, not a logits tensor; '
                    f'evaluate a model whose eval forward gives (batch, classes) logits.')
            logits, target = label_map.apply(output.float(), target.to(settings.device))
            for k, hits in topk_correct(logits, target, (1, 5)).items():
                correct[k] += hits
    total = len(dataset)
    return {'top1': 100 * correct[1] / total, 'top5': 100 * correct[5] / total, 'num_images': total}


def error_grid(cells: Dict[str, Dict[str, Dict[str, float]]]) -> ErrorGrid:
    """ Top-1 error grid (corruption -> severity -> %) from stored ImageNet-C cell results. """
    return {c: {int(s): 100 - r['top1'] for s, r in severities.items()} for c, severities in cells.items()}


def evaluate_imagenet_c(
        model: torch.nn.Module,
        root: Path,
        settings: Optional[EvalSettings] = None,
        corruptions: Optional[Sequence[str]] = None,
        cells: Optional[Dict[str, Dict[str, Dict[str, float]]]] = None,
        on_cell_done: Optional[Callable[[Dict[str, Dict[str, Dict[str, float]]]], None]] = None,
) -> Dict[str, Dict[str, Dict[str, float]]]:
    """ Evaluate every cell of an ImageNet-C style folder: `{corruption: {'severity': {'top1', 'top5', ...}}}`.

    Cells already in `cells` are skipped (resume); `on_cell_done(cells)` runs after each new cell (e.g. to save).
    """
    settings = settings or EvalSettings()
    layout = discover_imagenet_c(root, corruptions)
    label_map = dataset_label_map(layout.classes, model_num_classes(model))
    cells = cells if cells is not None else {}
    todo = [(c, s, path) for c, by_severity in layout.cells.items() for s, path in by_severity.items()
            if str(s) not in cells.get(c, {})]
    for corruption, severity, path in tqdm(todo, desc='ImageNet-C cells', disable=not settings.progress):
        result = evaluate_imagefolder(model, path, settings, label_map, desc=f'{corruption}/{severity}')
        cells.setdefault(corruption, {})[str(severity)] = result
        if on_cell_done is not None:
            on_cell_done(cells)
    return cells


def write_json_atomic(path: Path, data: Any) -> None:
    """ Write JSON to `path` through a temporary file and a rename, so readers never see half a file. """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def load_results(path: Path) -> Dict[str, Any]:
    """ A results file written by `evaluate_robustness`, with a clear error for anything else. """
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f'results file {path} does not exist') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'results file {path} is not valid JSON ({e}); delete it or pass another file') from None
    if not isinstance(results, dict) or 'model' not in results or 'identity' not in results:
        raise ValueError(f'{path} is not a fan_stl robustness results file (no "model" / "identity" entries)')
    return results


def load_baseline(path: Path) -> CorruptionBaseline:
    """ A `CorruptionBaseline` from another model's results file (mCE / relative mCE relative to that model). """
    results = load_results(path)
    cells = results.get('imagenet_c', {}).get('cells')
    if not cells:
        raise ValueError(
            f'baseline results {path} hold no ImageNet-C cells; evaluate the baseline with --imagenet-c first')
    clean = results.get('clean')
    return CorruptionBaseline.from_grid(
        results['model'], error_grid(cells), clean_error=100 - clean['top1'] if clean else None)


def _check_same_root(results: Dict[str, Any], key: str, root: Path, path: Path) -> None:
    stored = results.get(key, {}).get('root')
    if stored is not None and stored != str(Path(root).resolve()):
        raise ValueError(
            f'{path} holds {key} results for {stored}, not {Path(root).resolve()}; use another output folder or '
            f'delete the file to start over.')


def evaluate_robustness(
        model: torch.nn.Module,
        name: str,
        results_path: Path,
        clean: Optional[Path] = None,
        imagenet_c: Optional[Path] = None,
        imagenet_a: Optional[Path] = None,
        imagenet_r: Optional[Path] = None,
        baseline: CorruptionBaseline = ALEXNET,
        settings: Optional[EvalSettings] = None,
        corruptions: Optional[Sequence[str]] = None,
        source: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """ Evaluate `model` on the given datasets, resuming from and saving to `results_path` (JSON).

    `source` (e.g. the checkpoint path) is part of the file's identity together with `name` and the data config:
    a file written for anything else is refused rather than mixed in.
    """
    settings = settings or EvalSettings()
    results_path = Path(results_path)
    identity = {'model': name, 'source': source or {}, 'data_config': model_data_config(model, settings.img_size)}
    identity = json.loads(json.dumps(identity))  # tuples -> lists, as stored
    results: Dict[str, Any] = {'model': name, 'identity': identity}
    if results_path.exists():
        results = load_results(results_path)
        if results['identity'] != identity:
            raise ValueError(
                f'{results_path} was written for other settings ({results["identity"]}), not {identity}; use another '
                f'output folder or delete the file to start over.')

    def save() -> None:
        write_json_atomic(results_path, results)

    for key, root in (('clean', clean), ('imagenet_a', imagenet_a), ('imagenet_r', imagenet_r)):
        if root is None:
            continue
        _check_same_root(results, key, root, results_path)
        if 'top1' in results.get(key, {}):
            continue
        label_map = None
        if key != 'clean':
            label_map = imagenet_subset_label_map(list_classes(root), key, model_num_classes(model))
        accuracy = evaluate_imagefolder(model, root, settings, label_map, desc=key)
        results[key] = {'root': str(Path(root).resolve()), **accuracy}
        save()

    if imagenet_c is not None:
        _check_same_root(results, 'imagenet_c', imagenet_c, results_path)
        section = results.setdefault('imagenet_c', {'root': str(Path(imagenet_c).resolve()), 'cells': {}})
        evaluate_imagenet_c(model, imagenet_c, settings, corruptions, section['cells'], on_cell_done=lambda _: save())
    if 'imagenet_c' in results:
        clean_error = 100 - results['clean']['top1'] if 'clean' in results else None
        summary = summarize_corruptions(error_grid(results['imagenet_c']['cells']), clean_error, baseline)
        results['imagenet_c']['summary'] = asdict(summary)
    save()
    return results
