"""The sets beyond clean / ImageNet-C / -A / -R, run into the same resumable results file (`evaluate_robustness`'s
`extra`): other corruption families, the RobustBench protocol, ReaL, ImageNetV2, Sketch, the 200-class clean
baselines, cue-conflict shape bias, occlusion and ImageNet-P.

`ExtraSets.check` reads every folder layout and label file first, so bad input is one clear error before any image is
scored. Each set is a section of the results file with its root and file-list fingerprint; a finished section (and
each finished occlusion ratio and ImageNet-P perturbation) is kept on a rerun, and refused when its files changed.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import cue_conflict, imagenet_p, occlusion, shift_sets
from .class_maps import dataset_label_map
from .evaluate import (
    FIX, EvalSettings, ResultsMismatchError, _check_section, evaluate_imagefolder, model_num_classes)
from .images import file_list_fingerprint, list_images
from .layouts import discover_imagenet_c, list_classes
from .robustbench import SubsetProtocol

Samples = List[Tuple[Path, int]]


@dataclass
class ExtraSets:
    """ What to evaluate besides the standard sets; `ar_clean` and `occlusion` use the clean folder. """
    corruption_sets: Sequence[Path] = ()
    protocol: Optional[SubsetProtocol] = None
    real: Optional[Path] = None
    real_labels: Optional[Path] = None
    imagenet_v2: Sequence[Path] = ()
    sketch: Optional[Path] = None
    ar_clean: bool = False
    cue_conflict: Optional[Path] = None
    occlusion: Optional[Sequence[float]] = None
    occlusion_seed: int = 0
    imagenet_p: Optional[Path] = None

    def check(self, clean: Optional[Path], imagenet_c: Optional[Path] = None) -> None:
        """ Every layout, label file and subset list, before any model runs (raises on the first problem). """
        if (self.ar_clean or self.occlusion is not None) and clean is None:
            raise ValueError('--ar-clean and --occlusion use the clean --data folder (ImageNet val): give --data')
        roots = [Path(r) for r in ((imagenet_c,) if imagenet_c else ()) + tuple(self.corruption_sets)]
        layouts = [discover_imagenet_c(r) for r in roots]
        if self.protocol is not None:
            if clean is not None:
                self.protocol.select(Path(clean), list_classes(clean))
            for layout in layouts:
                for by_severity in layout.cells.values():
                    for cell in by_severity.values():
                        self.protocol.select(cell, layout.classes)
        if self.real is not None:
            shift_sets.real_samples(self.real, shift_sets.load_real_labels(self.real_labels_path))
        variants = [shift_sets.v2_variant(root) for root in self.imagenet_v2]
        if len(set(variants)) != len(variants):
            raise ValueError(f'two ImageNetV2 folders of the same variant: {", ".join(map(str, self.imagenet_v2))}')
        for root in self.imagenet_v2:
            shift_sets.v2_samples(root)
        if self.sketch is not None:
            shift_sets.sketch_classes(self.sketch)
        if self.cue_conflict is not None:
            cue_conflict.list_stimuli(self.cue_conflict)
        if self.occlusion is not None:
            occlusion.check_ratios(self.occlusion)
        if self.imagenet_p is not None:
            imagenet_p.list_sequences(self.imagenet_p)

    def run(self, model: torch.nn.Module, results: Dict[str, Any], settings: EvalSettings, clean: Optional[Path],
            save: Callable[[], None], path: Path) -> Dict[str, Any]:
        """ Evaluate the sets into `results` (`run_extra_sets`); `evaluate_robustness` calls this. """
        return run_extra_sets(model, results, self, settings, clean, save, path)

    @property
    def real_labels_path(self) -> Path:
        return Path(self.real_labels) if self.real_labels is not None else shift_sets.default_real_labels()


class _Collector:
    """ Keeps the model outputs of each scored sample index. """

    def __init__(self):
        self.logits: Dict[int, torch.Tensor] = {}

    def __call__(self, logits: torch.Tensor, index: torch.Tensor) -> None:
        self.logits.update(zip(index.tolist(), logits))


def _resumed(results: Dict[str, Any], key: str, root: Path, samples: Samples, path: Path) -> bool:
    """ True when `results[key]` holds this set's finished numbers; refuses numbers of other files. """
    expected = {'root': str(Path(root).resolve())}
    _check_section(results, key, expected, path)
    if key not in results:
        return False
    if results[key].get('files') != file_list_fingerprint(root, [p for p, _ in samples]):
        raise ResultsMismatchError(f'{path} holds {key} results for other files than {root} has now; {FIX}.')
    return True


def _run_set(model: torch.nn.Module, results: Dict[str, Any], key: str, root: Path, samples: Samples,
             settings: EvalSettings, save: Callable[[], None], path: Path,
             finish: Optional[Callable[[Dict[str, Any], _Collector], Dict[str, Any]]] = None, **kwargs: Any) -> None:
    """ Score one set unless resumed; `finish(accuracy, collector)` turns the raw pass into the stored numbers. """
    if _resumed(results, key, Path(root), samples, path):
        return
    collector = _Collector()
    accuracy = evaluate_imagefolder(model, root, settings, desc=key, samples=samples,
                                    collect=collector if finish else None, **kwargs)
    results[key] = {'root': str(Path(root).resolve()), **(finish(accuracy, collector) if finish else accuracy)}
    save()


def _real(model, results, extra: ExtraSets, settings, save, path) -> None:
    shift_sets.require_imagenet_head(model_num_classes(model), 'ImageNet-ReaL')
    samples, labels = shift_sets.real_samples(extra.real, shift_sets.load_real_labels(extra.real_labels_path))

    def finish(accuracy, collector):
        kept = sorted(collector.logits)
        top1, top5, scored = shift_sets.real_accuracy(torch.stack([collector.logits[i] for i in kept]),
                                                      [labels[i] for i in kept])
        return {**accuracy, 'top1': top1, 'top5': top5, 'num_images': scored, 'original_top1': accuracy['top1'],
                'labels': str(extra.real_labels_path)}
    _run_set(model, results, 'imagenet_real', extra.real, samples, settings, save, path, finish,
             classes=list_classes(extra.real))


def _occlusion(model, results, extra: ExtraSets, clean: Path, settings, save, path) -> None:
    classes = list_classes(clean)
    samples = list_images(clean, classes)
    expected = {'root': str(Path(clean).resolve()), 'seed': extra.occlusion_seed, 'patch': occlusion.PATCH}
    _check_section(results, 'occlusion', expected, path)
    section = results.setdefault('occlusion', {**expected, 'cells': {}})
    for ratio in occlusion.check_ratios(extra.occlusion):
        _run_set(model, section['cells'], f'{ratio:.2f}', clean, samples, settings, save, path, classes=classes,
                 post_transform=occlusion.PatchDrop(ratio, extra.occlusion_seed))
    curve = dict(sorted((float(r), cell['top1']) for r, cell in section['cells'].items()))
    section['summary'] = {'ratios': list(curve), 'accuracy': list(curve.values()),
                          'area': occlusion.area_under_curve(curve)}
    save()


def _cue_conflict(model, results, extra: ExtraSets, settings, save, path) -> None:
    stimuli = cue_conflict.list_stimuli(extra.cue_conflict)
    samples = [(s.path, cue_conflict.CATEGORIES.index(s.shape)) for s in stimuli]

    def finish(accuracy, collector):
        kept = sorted(collector.logits)
        scores = cue_conflict.category_scores(torch.stack([collector.logits[i] for i in kept]))
        decisions = [cue_conflict.CATEGORIES[int(i)] for i in scores.argmax(dim=1)]
        return {**cue_conflict.shape_bias([stimuli[i] for i in kept], decisions), 'num_images': len(kept),
                'unreadable': accuracy['unreadable'], 'files': accuracy['files']}
    if model_num_classes(model) != 1000:
        raise ValueError(f'shape bias maps 1000 ImageNet outputs to 16 categories; this model has '
                         f'{model_num_classes(model)}. Use an ImageNet-1k model.')
    _run_set(model, results, 'cue_conflict', extra.cue_conflict, samples, settings, save, path, finish,
             label_map=shift_sets.IDENTITY_MAP, classes=list(cue_conflict.CATEGORIES))


def _imagenet_p(model, results, extra: ExtraSets, settings, save, path) -> None:
    root = Path(extra.imagenet_p)
    expected = {'root': str(root.resolve())}
    _check_section(results, 'imagenet_p', expected, path)
    section = results.setdefault('imagenet_p', {**expected, 'perturbations': {}})
    for name, sequences in imagenet_p.list_sequences(root).items():
        samples = [(frame, target) for target, frames in sequences for frame in frames]
        bounds = [0]
        for _, frames in sequences:
            bounds.append(bounds[-1] + len(frames))

        def finish(accuracy, collector, bounds=bounds, name=name):
            if len(collector.logits) != bounds[-1]:
                raise ValueError(f'ImageNet-P {name}: {accuracy["unreadable"]} unreadable frame(s) (e.g. '
                                 f'{accuracy["unreadable_files"][:1]}); flip rates need every frame of a sequence')
            runs = [[collector.logits[i] for i in range(a, b)] for a, b in zip(bounds, bounds[1:])]
            return {**imagenet_p.perturbation_metrics(runs, name), 'files': accuracy['files']}
        _run_set(model, section['perturbations'], name, root / name, samples, settings, save, path, finish,
                 label_map=shift_sets.IDENTITY_MAP, classes=[])
    values = section['perturbations'].values()
    section['summary'] = {'mean_flip_rate': sum(v['flip_rate'] for v in values) / len(values),
                          'mean_top5_distance': sum(v['top5_distance'] for v in values) / len(values)}
    save()


def run_extra_sets(model: torch.nn.Module, results: Dict[str, Any], extra: ExtraSets, settings: EvalSettings,
                   clean: Optional[Path], save: Callable[[], None], path: Path) -> Dict[str, Any]:
    """ Evaluate every set `extra` asks for into `results` (corruption families and the protocol are run by
    `evaluate_robustness` itself), saving after each finished set. """
    num_classes = model_num_classes(model)
    if extra.real is not None:
        _real(model, results, extra, settings, save, path)
    for root in extra.imagenet_v2:
        shift_sets.require_imagenet_head(num_classes, 'ImageNetV2')
        key = 'imagenetv2_' + shift_sets.v2_variant(root).replace('-', '_').replace('.', '')
        _run_set(model, results, key, root, shift_sets.v2_samples(root), settings, save, path,
                 label_map=shift_sets.IDENTITY_MAP, classes=[])
    if extra.sketch is not None:
        shift_sets.require_imagenet_head(num_classes, 'ImageNet-Sketch')
        classes = shift_sets.sketch_classes(extra.sketch)
        _run_set(model, results, 'sketch', extra.sketch, list_images(extra.sketch, classes), settings, save, path,
                 label_map=dataset_label_map(classes, num_classes), classes=classes)
    if extra.ar_clean:
        for subset in ('imagenet_a', 'imagenet_r'):
            samples, label_map = shift_sets.subset_clean(clean, subset, num_classes)
            _run_set(model, results, f'{subset}_clean', clean, samples, settings, save, path, label_map=label_map,
                     classes=[])
    if extra.cue_conflict is not None:
        _cue_conflict(model, results, extra, settings, save, path)
    if extra.occlusion is not None:
        _occlusion(model, results, extra, clean, settings, save, path)
    if extra.imagenet_p is not None:
        _imagenet_p(model, results, extra, settings, save, path)
    return results

