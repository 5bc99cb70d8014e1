"""Evaluation runner: clean top-1/top-5 on an ImageFolder, the ImageNet-C grid (from a folder or corrupted on the fly),
ImageNet-A / -R; resumable, and never reporting a number that may belong to another model or other data.

Images go through the model's own timm eval transform (`resolve_data_config` + `create_transform`; for FAN models
bicubic with crop_pct 1.0). `evaluate_robustness` keeps one JSON file per model and rewrites it atomically after
every finished cell, so an interrupted run resumes where it stopped and a finished cell is never recomputed. The file
records what it measured - a sha256 of the model's weights, its name, classes and eval transform, and for every
dataset and cell the root and a fingerprint of its file list - and a run that differs in any of these is refused.

Accuracy is taken over the images actually scored: unreadable files are counted and listed per cell (or stop the
run with `strict`), never replaced by another image; a model with non-finite outputs is never scored.
"""
import contextlib
import hashlib
import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
from timm.data import create_transform, resolve_data_config
from torch.utils.data import DataLoader
from tqdm import tqdm

from .class_maps import LabelMap, dataset_label_map, imagenet1k_wnids, imagenet_subset_label_map
from .corrupt import OnTheFlyCorruption, check_backend, check_corruption_request
from .dataset import FATAL, ScoredImages
from .families import FAMILIES, IMAGENET_C, summarize_family
from .images import duplicate_stems, file_list_fingerprint, list_images, read_rgb
from .layouts import ImageNetCLayout, discover_imagenet_c, list_classes
from .metrics import (
    ALEXNET, ALL_CORRUPTIONS, SEVERITIES, STANDARD_CORRUPTIONS, CorruptionBaseline, ErrorGrid, corruption_errors,
    missing_cells, summarize_corruptions, topk_correct,
)
from .robustbench import SubsetProtocol
from .tensor_corruption import TensorCorruption
from ..utils.amp import amp_dtype, amp_name
from ..utils.atomic import write_json_atomic
from ..utils.lock import locks_output_folder
from ..utils.run_identity import refuse_other_run

RESULTS_FORMAT = 2  # 1: fan_stl <= 0.1.0 files, which named the model by its checkpoint path only
EVAL_RULE = 'top-1 / top-5 over the readable images; unreadable images counted, never replaced or scored'
IMAGENET_C_SIZE = 224
FIX = 'use a new --out folder, or pass --overwrite to discard the stored results'
CellResults = Dict[str, Dict[str, Dict[str, Any]]]


class NonFiniteOutputError(ValueError):
    """ The model produced NaN or infinite logits: its accuracy is undefined and is not reported. """


class UnreadableImageError(OSError):
    """ An image could not be read and the evaluation is strict. """


class ResultsMismatchError(ValueError):
    """ A results file belongs to another model, other settings or other data. """


@dataclass
class EvalSettings:
    """ How to run the model: batch size, loader workers, device, autocast dtype (`fan_stl.utils.amp`: 'bfloat16'
    or 'bf16', 'float16' or 'fp16'; kept under its canonical name), input size, and whether an unreadable image stops
    the run (`strict`) instead of being counted and left out. """
    batch_size: int = 64
    workers: int = 2
    device: str = field(default_factory=lambda: 'cuda' if torch.cuda.is_available() else 'cpu')
    amp: Optional[str] = None
    img_size: Optional[int] = None
    progress: bool = True
    strict: bool = False

    def __post_init__(self):
        self.amp = amp_name(self.amp)
        if str(self.device).startswith('cuda') and not torch.cuda.is_available():
            raise ValueError(f'device {self.device!r} was asked for, but this machine has no usable CUDA GPU; use '
                             f'--device cpu')
        if self.amp == 'float16' and not str(self.device).startswith('cuda'):
            raise ValueError('float16 (fp16) autocast needs a CUDA device; use amp="bfloat16" or no amp on CPU')

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(self.device).type, dtype=amp_dtype(self.amp))


@dataclass(frozen=True)
class OnTheFlySpec:
    """ Corruptions made during the evaluation instead of read from a corrupted folder.

    `backend` 'torch' (default): batches corrupted on the evaluation device at the model's input size
    (`TensorCorruption`); 'imagecorruptions': each full-size image in the loader by the reference functions, the
    same images as `corrupt` writes. The two give different images and numbers; results record which was used.
    """
    corruptions: Sequence[str] = ALL_CORRUPTIONS
    severities: Sequence[int] = SEVERITIES
    seed: int = 0
    image_format: str = 'jpg'
    backend: str = 'torch'

    def __post_init__(self):
        check_corruption_request(self.corruptions, self.severities, self.image_format)
        check_backend(self.backend)

    def cell(self, root: Path, corruption: str, severity: int) -> Union[OnTheFlyCorruption, TensorCorruption]:
        """ The corruption of one cell for this backend. """
        if self.backend == 'torch':
            return TensorCorruption(corruption, severity, self.seed, self.image_format)
        return OnTheFlyCorruption(Path(root), corruption, severity, self.seed, self.image_format)


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


def weights_digest(model: torch.nn.Module) -> str:
    """ sha256 over the model's state dict (names, dtypes, shapes and bytes): what is evaluated, wherever it came from.

    One pass over the weights (about a second per GB on a CPU core), negligible next to an evaluation; unlike a
    checkpoint path or mtime it changes whenever the numbers do, and it covers `--pretrained` and random weights too.
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f'{name}|{tensor.dtype}|{tuple(tensor.shape)}\n'.encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b'')
    return digest.hexdigest()


def _check_outputs(output: Any, model: torch.nn.Module, desc: str) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise TypeError(
            f'{type(model).__name__} returned {type(output).__name__} in eval mode, not a logits tensor; '
            f'evaluate a model whose eval forward gives (batch, classes) logits.')
    finite = torch.isfinite(output).all(dim=1)
    if not bool(finite.all()):
        raise NonFiniteOutputError(
            f'{type(model).__name__} gave NaN or infinite logits for {int((~finite).sum())} of {len(finite)} images '
            f'of a batch in {desc}; its accuracy is undefined and was not scored. Check the weights (a diverged '
            f'training, a wrong checkpoint) or try without --amp.')
    return output


def evaluate_imagefolder(
        model: torch.nn.Module,
        root: Path,
        settings: Optional[EvalSettings] = None,
        label_map: Optional[LabelMap] = None,
        desc: str = 'eval',
        corruption: Optional[Union[OnTheFlyCorruption, TensorCorruption]] = None,
        classes: Optional[Sequence[str]] = None,
        samples: Optional[Sequence[Tuple[Path, int]]] = None,
        transform: Optional[Callable] = None,
        post_transform: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
        collect: Optional[Callable[[torch.Tensor, torch.Tensor], None]] = None,
) -> Dict[str, Any]:
    """ Top-1 / top-5 accuracy (%) of `model` on the ImageFolder `root` (optionally corrupted on the fly: a
    `TensorCorruption` acts on each batch on the device, after the transform and before its normalisation).

    Returns `{'top1', 'top5', 'num_images', 'unreadable', 'unreadable_files', 'duplicate_stems', 'files'}`:
    accuracies over the `num_images` images scored; `files` is the file-list fingerprint of `root`.
    `label_map` defaults to the dataset's classes matched to the model head (`dataset_label_map`). `samples`
    (default: every image) and `transform` (default: the model's eval transform) replace what is read and how;
    `post_transform(tensor, sample index)` changes each input tensor (e.g. occlusion); `collect(logits, sample
    indices)` receives the full model outputs of the scored images (float), for metrics beyond top-k.
    """
    settings = settings or EvalSettings()
    root = Path(root)
    classes = list(classes) if classes is not None else list_classes(root)
    label_map = label_map or dataset_label_map(classes, model_num_classes(model))
    samples = list(samples) if samples is not None else list_images(root, classes)
    twice = duplicate_stems([p for p, _ in samples])
    if twice:
        warnings.warn(
            f'{root}: {len(twice)} image(s) are there twice under one name with different extensions (e.g. '
            f'{twice[0].relative_to(root)}.*), and each copy is scored; a `corrupt` run with another --format into '
            f'the same folder? Remove the extra copies.', stacklevel=2)
    config = model_data_config(model, settings.img_size)
    transform, normalize = transform or create_transform(**config), None
    batch_corruption = corruption if isinstance(corruption, TensorCorruption) else None
    if batch_corruption is not None:
        transform, normalize = _split_normalize(transform)
    dataset = ScoredImages(samples, transform, config['input_size'], None if batch_corruption else corruption,
                           post_transform)
    loader = DataLoader(
        dataset, batch_size=settings.batch_size, num_workers=settings.workers, shuffle=False,
        pin_memory=str(settings.device).startswith('cuda'), persistent_workers=False)
    model.eval().to(settings.device)
    correct, scored, unreadable = {1: 0, 5: 0}, 0, []
    with torch.inference_mode(), settings.autocast():
        for images, target, index, problems in tqdm(loader, desc=desc, leave=False, disable=not settings.progress):
            ok = torch.tensor([not p for p in problems], dtype=torch.bool)
            for problem in (p for p in problems if p):
                if problem.startswith(FATAL):
                    raise ValueError(problem.split(': ', 1)[1])
                if settings.strict:
                    raise UnreadableImageError(f'{problem} (strict evaluation stops on the first unreadable image; '
                                               f'drop --strict to count and skip such files)')
                unreadable.append(problem)
            if not ok.any():
                continue
            images = images[ok].to(settings.device, non_blocking=True)
            if batch_corruption is not None:
                keys = [samples[i][0].relative_to(root).as_posix() for i in index[ok].tolist()]
                images = normalize(batch_corruption(images, keys))
            output = _check_outputs(model(images), model, desc)
            if collect is not None:
                collect(output.float().cpu(), index[ok])
            logits, kept = label_map.apply(output.float(), target[ok].to(settings.device))
            for k, hits in topk_correct(logits, kept, (1, 5)).items():
                correct[k] += hits
            scored += int(ok.sum())
    if not scored:
        raise ValueError(f'none of the {len(samples)} images in {root} could be read (e.g. {unreadable[0]}).')
    return {
        'top1': 100 * correct[1] / scored, 'top5': 100 * correct[5] / scored, 'num_images': scored,
        'unreadable': len(unreadable), 'unreadable_files': [p.split(': ', 2)[1] for p in unreadable[:10]],
        'duplicate_stems': len(twice), 'files': file_list_fingerprint(root, [p for p, _ in samples])}


def _split_normalize(transform: Any) -> Tuple[Any, Callable[[torch.Tensor], torch.Tensor]]:
    """ timm's eval transform without its final Normalize (images stay in [0, 1]), and that Normalize. """
    steps = list(getattr(transform, 'transforms', []))
    if not steps or type(steps[-1]).__name__ != 'Normalize':
        raise ValueError(f'the eval transform does not end with Normalize ({transform}); the torch corruption backend '
                         f'needs images in [0, 1]: use --corruption-backend imagecorruptions')
    return type(transform)(steps[:-1]), steps[-1]


def error_grid(cells: CellResults) -> ErrorGrid:
    """ Top-1 error grid (corruption -> severity -> %) from stored ImageNet-C cell results. """
    return {c: {int(s): 100 - r['top1'] for s, r in severities.items()} for c, severities in cells.items()}


def imagenet_c_mismatch(layout: ImageNetCLayout) -> Optional[str]:
    """ Why the folder is not recognisably ImageNet-C (None when it is): AlexNet's errors only normalise that. """
    if len(layout.classes) != 1000 or set(layout.classes) != set(imagenet1k_wnids()):
        return f'it has {len(layout.classes)} class folders, not the 1000 ImageNet wnids'
    absent = [c for c in STANDARD_CORRUPTIONS if c not in layout.cells]
    if absent:
        return f'it lacks standard corruption(s) {", ".join(absent[:3])}'
    first_cell = next(iter(next(iter(layout.cells.values())).values()))
    sample = list_images(first_cell, layout.classes[:1])[0][0]
    size = read_rgb(sample).size
    if size != (IMAGENET_C_SIZE, IMAGENET_C_SIZE):
        return f'its images are {size[0]}x{size[1]} px (e.g. {sample}), not the 224 px centre crops of ImageNet-C'
    return None


def _samples(root: Path, classes: Sequence[str], protocol: Optional[SubsetProtocol]) -> List[Tuple[Path, int]]:
    return protocol.select(root, classes) if protocol is not None else list_images(root, classes)


def _check_cell_files(stored: Dict[str, Any], root: Path, classes: Sequence[str], where: str, path: Path,
                      protocol: Optional[SubsetProtocol] = None) -> None:
    current = file_list_fingerprint(root, [p for p, _ in _samples(root, classes, protocol)])
    if stored.get('files') != current:
        raise ResultsMismatchError(
            f'{path} holds {where} results for other files than {root} has now (images added, removed or changed '
            f'since); {FIX}.')


def _evaluate_cells(
        model: torch.nn.Module,
        todo: Sequence[Tuple[str, int, Path, Optional[Union[OnTheFlyCorruption, TensorCorruption]]]],
        classes: Sequence[str],
        settings: EvalSettings,
        cells: CellResults,
        on_cell_done: Optional[Callable[[CellResults], None]],
        results_path: Optional[Path] = None,
        protocol: Optional[SubsetProtocol] = None,
) -> CellResults:
    label_map = dataset_label_map(classes, model_num_classes(model))
    transform = protocol.corruption_transform(model_data_config(model, settings.img_size)) if protocol else None
    pending = []
    for corruption, severity, root, on_the_fly in todo:
        stored = cells.get(corruption, {}).get(str(severity))
        if stored is None:
            pending.append((corruption, severity, root, on_the_fly))
        elif results_path is not None:
            _check_cell_files(stored, root, classes, f'{corruption}/{severity}', results_path, protocol)
    for corruption, severity, root, on_the_fly in tqdm(pending, desc='corruption cells',
                                                       disable=not settings.progress):
        cells.setdefault(corruption, {})[str(severity)] = evaluate_imagefolder(
            model, root, settings, label_map, desc=f'{corruption}/{severity}', corruption=on_the_fly, classes=classes,
            samples=_samples(root, classes, protocol) if protocol else None, transform=transform)
        if on_cell_done is not None:
            on_cell_done(cells)
    return cells


def _layout_cells(layout: ImageNetCLayout) -> List[Tuple[str, int, Path, None]]:
    return [(c, s, path, None) for c, by_severity in layout.cells.items() for s, path in by_severity.items()]


def evaluate_imagenet_c(
        model: torch.nn.Module,
        root: Path,
        settings: Optional[EvalSettings] = None,
        corruptions: Optional[Sequence[str]] = None,
        cells: Optional[CellResults] = None,
        on_cell_done: Optional[Callable[[CellResults], None]] = None,
        results_path: Optional[Path] = None,
) -> CellResults:
    """ Evaluate every cell of an ImageNet-C style folder: `{corruption: {'severity': {'top1', 'top5', ...}}}`.

    Cells already in `cells` are skipped (resume) after checking - when `results_path` names their file - that their
    files are unchanged; `on_cell_done(cells)` runs after each new cell (e.g. to save).
    """
    layout = discover_imagenet_c(root, corruptions)
    return _evaluate_cells(model, _layout_cells(layout), layout.classes, settings or EvalSettings(),
                           cells if cells is not None else {}, on_cell_done, results_path)


def evaluate_corruptions_on_the_fly(
        model: torch.nn.Module,
        root: Path,
        spec: OnTheFlySpec = OnTheFlySpec(),
        settings: Optional[EvalSettings] = None,
        cells: Optional[CellResults] = None,
        on_cell_done: Optional[Callable[[CellResults], None]] = None,
        results_path: Optional[Path] = None,
) -> CellResults:
    """ As `evaluate_imagenet_c`, with each cell made during the evaluation from the clean ImageFolder `root`. With
    `spec.backend` 'imagecorruptions', the same images (and numbers) as `corrupt_folder(root, dst, seed=spec.seed,
    image_format=spec.image_format)` followed by `evaluate_imagenet_c(dst)`, without the copies on disk; with 'torch',
    each batch is corrupted on the device at the model's input size (`TensorCorruption`). """
    classes = list_classes(root)
    todo = [(c, s, Path(root), spec.cell(Path(root), c, s))
            for c in ALL_CORRUPTIONS if c in spec.corruptions for s in sorted(spec.severities)]
    return _evaluate_cells(model, todo, classes, settings or EvalSettings(), cells if cells is not None else {},
                           on_cell_done, results_path)


def load_results(path: Path) -> Dict[str, Any]:
    """ A results file written by `evaluate_robustness` (this format or an earlier one), with a clear error else. """
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f'results file {path} does not exist') from None
    except json.JSONDecodeError as e:
        raise ValueError(f'results file {path} is not valid JSON ({e}); delete it or pass another file') from None
    if not isinstance(results, dict) or 'model' not in results or not isinstance(results.get('identity'), dict):
        raise ValueError(f'{path} is not a fan_stl robustness results file (no "model" / "identity" entries)')
    return results


def load_baseline(path: Path) -> CorruptionBaseline:
    """ A `CorruptionBaseline` from another model's results file (mCE / relative mCE relative to that model). """
    return baseline_from_results(load_results(path), str(path))


def baseline_from_results(results: Dict[str, Any], where: str = 'the baseline results') -> CorruptionBaseline:
    """ A `CorruptionBaseline` from a results dict: its per-corruption errors and clean error. """
    cells = {c: by_s for f in FAMILIES for c, by_s in results.get(f, {}).get('cells', {}).items()}
    if not cells:
        raise ValueError(
            f'{where} hold no corruption cells; evaluate the baseline model with --imagenet-c or --corrupt-on-the-fly')
    clean = results.get('clean')
    grid = error_grid(cells)
    complete = [c for c in grid if not missing_cells(grid, (c,))]  # a partial set normalises no mCE, but is no error
    return CorruptionBaseline(results['model'], corruption_errors(grid, complete),
                              clean_error=100 - clean['top1'] if clean else None)


def summarize_results(results: Dict[str, Any], baseline: Optional[CorruptionBaseline]) -> Dict[str, Any]:
    """ (Re)compute each corruption family's `summary` (`results['imagenet_c']`, `['imagenet_c_bar']`, ...) with
    `baseline` as the mCE normaliser (None: no mCE; AlexNet's ImageNet-C errors normalise no other family). """
    clean_error = 100 - results['clean']['top1'] if 'clean' in results else None
    for family in FAMILIES.values():
        section = results.get(family.key)
        if family.key == 'imagenet_c' or not section or not section.get('cells'):
            continue
        own = None if baseline is None or baseline.name == ALEXNET.name else baseline
        section['summary'] = asdict(summarize_family(error_grid(section['cells']), family, clean_error, own))
    section = results.get('imagenet_c')
    if section and section.get('cells'):
        summary = summarize_corruptions(error_grid(section['cells']), clean_error, baseline)
        if baseline is None:
            summary.notes.append(
                f'no mCE: {section.get("not_imagenet_c", "no normaliser was given")}, so AlexNet\'s ImageNet-C errors '
                f'would not give comparable numbers; pass --baseline MODEL for mCE relative to a model '
                f'(or --alexnet-normalise if this really is ImageNet-C)')
        section['summary'] = asdict(summary)
    return results


def _identity(model: torch.nn.Module, name: str, settings: EvalSettings, source: Optional[Dict[str, Any]]) -> Dict:
    identity = {
        'format': RESULTS_FORMAT, 'model': name, 'architecture': model.pretrained_cfg.get('architecture')
        if isinstance(getattr(model, 'pretrained_cfg', None), dict) else type(model).__name__,
        'num_classes': model_num_classes(model), 'weights_sha256': weights_digest(model), 'source': source or {},
        'data_config': model_data_config(model, settings.img_size), 'amp': settings.amp, 'eval_rule': EVAL_RULE}
    return json.loads(json.dumps(identity))  # tuples -> lists, as stored


def stored_results(path: Path, identity: Dict[str, Any], overwrite: bool) -> Optional[Dict[str, Any]]:
    """ The results stored at `path` when they belong to `identity` (a dict with the results `format` of its
    writer); refuses them otherwise (unless `overwrite`). Used by the classification and segmentation evaluations. """
    if overwrite or not path.exists():
        return None
    try:
        results = load_results(path)
    except ValueError as e:
        raise ResultsMismatchError(f'{e}; {FIX}') from None
    stored = results['identity']
    if stored.get('format') != identity['format']:
        raise ResultsMismatchError(
            f'{path} was written by an earlier fan_stl (results format {stored.get("format", 1)}, this one writes '
            f'{identity["format"]}), whose identity of a run differs, so its numbers cannot be matched to this '
            f'model; {FIX}.')
    refuse_other_run(stored, identity, f'{path} holds results of another model or other settings', f'{FIX}.',
                     ResultsMismatchError)
    return results


def _check_section(results: Dict[str, Any], key: str, expected: Dict[str, Any], path: Path) -> None:
    stored = {k: results.get(key, {}).get(k) for k in expected}
    if key in results and stored != expected:
        raise ResultsMismatchError(
            f'{path} holds {key} results for {stored}, not {expected}; {FIX}.')


@locks_output_folder('results_path', parent=True)
def evaluate_robustness(
        model: torch.nn.Module,
        name: str,
        results_path: Path,
        clean: Optional[Path] = None,
        imagenet_c: Optional[Path] = None,
        imagenet_a: Optional[Path] = None,
        imagenet_r: Optional[Path] = None,
        baseline: Optional[CorruptionBaseline] = None,
        settings: Optional[EvalSettings] = None,
        corruptions: Optional[Sequence[str]] = None,
        source: Optional[Dict[str, Any]] = None,
        on_the_fly: Optional[OnTheFlySpec] = None,
        overwrite: bool = False,
        extra: Optional[Any] = None,  # sets.ExtraSets (sets builds on this module, so it is not imported here)
) -> Dict[str, Any]:
    """ Evaluate `model` on the given datasets, resuming from and saving to `results_path` (JSON).

    The file's identity is the model's weights (sha256), `name`, classes, eval transform and `source` (e.g. the
    checkpoint path); each dataset adds its root and file-list fingerprint. Stored results of anything else are
    refused (`ResultsMismatchError`) unless `overwrite` discards them. `on_the_fly` corrupts `clean` in the loader
    instead of reading `imagenet_c`. mCE is normalised by `baseline`; when None, by AlexNet only if `imagenet_c` is
    recognisably ImageNet-C (1000 ImageNet classes, the 15 corruptions, 224 px images), else not computed.
    `extra` (`sets.ExtraSets`) adds the other sets - corruption families, distribution shifts, cue conflict,
    occlusion, ImageNet-P - and the RobustBench protocol; all its inputs are checked before any image is scored.
    """
    settings = settings or EvalSettings()
    results_path = Path(results_path)
    if on_the_fly is not None and (clean is None or imagenet_c is not None):
        raise ValueError('on-the-fly corruptions are made from the clean folder: give `clean` and no `imagenet_c`')
    protocol = extra.protocol if extra is not None else None
    if extra is not None:
        extra.check(clean, imagenet_c)
    identity = _identity(model, name, settings, source)
    results = stored_results(results_path, identity, overwrite) or {'model': name, 'identity': identity}
    results['param_count'] = sum(p.numel() for p in model.parameters())

    def save() -> None:
        write_json_atomic(results_path, results)

    for key, root in (('clean', clean), ('imagenet_a', imagenet_a), ('imagenet_r', imagenet_r)):
        if root is None:
            continue
        classes = list_classes(root)
        subset = protocol if key == 'clean' else None
        expected = {'root': str(Path(root).resolve()), 'protocol': subset and subset.name}
        _check_section(results, key, expected, results_path)
        if 'top1' in results.get(key, {}):
            _check_cell_files(results[key], Path(root), classes, key, results_path, subset)
            continue
        label_map = None if key == 'clean' else imagenet_subset_label_map(classes, key, model_num_classes(model))
        accuracy = evaluate_imagefolder(model, root, settings, label_map, desc=key, classes=classes,
                                        samples=_samples(Path(root), classes, subset) if subset else None)
        results[key] = {**expected, **accuracy}
        save()

    corruption_roots = [(Path(imagenet_c), corruptions)] if imagenet_c is not None else []
    corruption_roots += [(Path(root), None) for root in (extra.corruption_sets if extra is not None else ())]
    for root, only in corruption_roots:  # each family (ImageNet-C, -C-bar, -3DCC) in its own section
        layout = discover_imagenet_c(root, only)
        key = layout.family.key
        expected = {'root': str(root.resolve()), 'on_the_fly': None, 'protocol': protocol and protocol.name}
        _check_section(results, key, expected, results_path)
        section = results.setdefault(key, {**expected, 'cells': {}})
        if key == IMAGENET_C.key:
            mismatch = imagenet_c_mismatch(layout)
            section['not_imagenet_c'] = mismatch and f'{root} is not recognisably ImageNet-C: {mismatch}'
            if protocol is not None:  # AlexNet's full-set errors do not normalise a subset
                section['not_imagenet_c'] = (f'scored on the {protocol.name} subset ({len(protocol.ids)} images), '
                                             f'which AlexNet\'s full ImageNet-C errors do not normalise')
        _evaluate_cells(model, _layout_cells(layout), layout.classes, settings, section['cells'], lambda _: save(),
                        results_path, protocol)
    if on_the_fly is not None:
        root = Path(clean)
        expected = {'root': str(root.resolve()), 'on_the_fly': {'seed': on_the_fly.seed,
                                                                'format': on_the_fly.image_format,
                                                                'backend': on_the_fly.backend}}
        _check_section(results, 'imagenet_c', expected, results_path)
        section = results.setdefault('imagenet_c', {**expected, 'cells': {}})
        section['not_imagenet_c'] = f'the corruptions were made on the fly from {root}, not taken from ImageNet-C'
        evaluate_corruptions_on_the_fly(model, root, on_the_fly, settings, section['cells'], lambda _: save(),
                                        results_path)
    if extra is not None:
        extra.run(model, results, settings, clean, save, results_path)
    if baseline is None and 'imagenet_c' in results and results['imagenet_c'].get('not_imagenet_c') is None:
        baseline = ALEXNET
    summarize_results(results, baseline)
    save()
    return results
