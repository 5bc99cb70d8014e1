"""The STL story end to end: a plain baseline, a FAN token labeler and an STL student under one recipe, evaluated on
clean and corrupted images, compared by clean accuracy and by corruption error relative to the baseline.

The arms (all FAN-T-Hybrid, sizes set by `model_kwargs`) are listed in `fan_stl.demo.arms`; another table of arms (e.g.
`benchmarks/mixing_ablation.py`'s) is given as `ExperimentConfig.arm_table`. Used by `python -m fan_stl demo`
and `benchmarks/reproduce_small.py`. Every step resumes: finished trainings (their safetensors), corrupted images and
evaluated cells are reused when the same output folder is run again with the same settings (recorded in
`RUN_RECORD`); other settings are refused (`OutputFolderError`) unless `overwrite` discards the earlier run's
outputs. Other arms and seeds may be added to a folder: each (arm, seed) has its own weights and results.
With `progress`, one display covers the whole run: arm k of n, epoch, the validation top-1 of each finished epoch
and the overall ETA.
"""
import json
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, stdev
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch.nn as nn

import timm
from safetensors.torch import load_file
from tqdm import tqdm

from .. import __version__, models  # noqa: F401  (models: registers the fan_* architectures the arms create)
from ..weights.convert import write_weights_folder
from ..robustness import (
    CorruptionBaseline,
    EvalSettings,
    SEVERITIES,
    corrupt_folder,
    error_grid,
    evaluate_robustness,
    list_classes,
    mce,
    plot_corruption_errors,
)
from ..robustness.layouts import is_image
from ..training.engine import TrainConfig, train
from ..utils.atomic import write_json_atomic
from ..utils.lock import locks_output_folder
from ..utils.run_identity import refuse_other_run
from .arms import ARMS, ArmTable, check_arms, teacher_of, train_options, training_order
from .synthetic import VAL_PER_CLASS, class_folder_names, make_shapes_dataset, val_samples_with_masks
from .token_maps import has_token_head, localisation, plot_token_maps, token_logits

RUN_RECORD = 'fan_stl_run.json'
TOKEN_FIGURE = 'token_labels.png'  # generated data only: where the token heads put the class
# what a run writes into its output folder (besides RUN_RECORD), removed by `overwrite`
RUN_OUTPUTS = ('weights', 'results', 'val-c', 'summary.json', 'corruption_errors.png', TOKEN_FIGURE)
# settings that do not change any number of a run
_NOT_IDENTITY = ('arms', 'seeds', 'workers', 'progress', 'overwrite', 'out_dir')


class OutputFolderError(ValueError):
    """ The output folder holds another run's outputs; the message names `--out` and `--overwrite`. """


@dataclass
class ExperimentConfig:
    """ What to train and evaluate; `train` holds `TrainConfig` fields shared by every arm. """
    data_dir: str
    out_dir: str
    arms: Sequence[str] = ('baseline', 'tl', 'stl')
    seeds: Sequence[int] = (0,)
    train: Dict[str, Any] = field(default_factory=dict)
    corruptions: Sequence[str] = ('gaussian_noise', 'defocus_blur', 'contrast', 'jpeg_compression', 'pixelate')
    severities: Sequence[int] = SEVERITIES
    eval_per_class: Optional[int] = None  # evaluate on the first n validation images of each class
    eval_batch_size: int = 64
    workers: int = 2
    progress: bool = True
    generate: Optional[Dict[str, Any]] = None  # generate data_dir first: `synthetic.make_shapes_dataset` args
    overwrite: bool = False  # discard the outputs of a run with other settings in out_dir instead of refusing
    arm_table: ArmTable = field(default_factory=lambda: dict(ARMS))  # arm -> options (`fan_stl.demo.arms`)


@dataclass
class ArmResult:
    arm: str
    seed: int
    clean_top1: float
    corruption_errors: Dict[str, float]
    mce_vs_baseline: float
    train_seconds: float
    history: List[Dict[str, float]]
    token_labels: Optional[Dict[str, float]] = None  # token-head arms on generated data: `token_maps.localisation`


def _identity(cfg: ExperimentConfig) -> Dict[str, Any]:
    values = {k: v for k, v in asdict(cfg).items() if k not in _NOT_IDENTITY}
    values['data_dir'] = str(Path(cfg.data_dir).resolve())
    return json.loads(json.dumps({'fan_stl_version': __version__, **values}))  # tuples -> lists, as stored


def _run_outputs(cfg: ExperimentConfig) -> List[Path]:
    """ What an earlier run left in the output folder: its outputs, evaluation subsets and generated data. """
    out = Path(cfg.out_dir)
    found = [out / name for name in RUN_OUTPUTS] + (sorted(out.glob('val-first*')) if out.is_dir() else [])
    data = Path(cfg.data_dir).resolve()
    if cfg.generate is not None and out.resolve() in data.parents:  # only generated data inside the folder
        found.append(data)
    return [p for p in found if p.exists()]


def claim_output_dir(cfg: ExperimentConfig) -> None:
    """ Make `cfg.out_dir` this run's before any work: resume a run with the same settings, refuse another one
    (`OutputFolderError`) or, with `cfg.overwrite`, remove its outputs (only the names a run writes). """
    out = Path(cfg.out_dir)
    record, identity = out / RUN_RECORD, _identity(cfg)
    fix = 'choose a new output folder (--out) or discard the earlier run (--overwrite)'
    if record.exists() and not cfg.overwrite:
        try:
            stored = json.loads(record.read_text())
        except ValueError:
            raise OutputFolderError(f'{record} is not valid JSON, so the run in {out} cannot be resumed; {fix}')
        refuse_other_run(stored, identity, f'{out} holds a run with other settings', fix, OutputFolderError)
        return
    outputs = _run_outputs(cfg)
    if outputs and not cfg.overwrite:
        raise OutputFolderError(f'{out} holds outputs of an earlier run without its record {RUN_RECORD} (an older '
                                f'fan_stl: {", ".join(p.name for p in outputs)}), which cannot be matched to this '
                                f'run; {fix}')
    for path in outputs:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(record, identity)


def _check(cfg: ExperimentConfig) -> None:
    for split in ('train', 'val'):
        if not (Path(cfg.data_dir) / split).is_dir():
            raise FileNotFoundError(
                f'{cfg.data_dir} has no {split}/ folder; give an ImageFolder root with train/<class>/ and val/<class>/')


def _eval_images(val_dir: Path, out_dir: Path, per_class: Optional[int]) -> Path:
    """ The validation images evaluated: all of them, or a copy of the first `per_class` of each class. """
    if per_class is None:
        return val_dir
    subset = out_dir / f'val-first{per_class}'
    for name in list_classes(val_dir):
        (subset / name).mkdir(parents=True, exist_ok=True)
        for src in sorted(p for p in (val_dir / name).iterdir() if is_image(p))[:per_class]:
            if not (subset / name / src.name).exists():
                shutil.copy2(src, subset / name / src.name)
    return subset


class RunProgress:
    """ The one progress display of a run: a bar over every epoch of every (seed, arm) training, described as
    `arm k/n NAME` with the epoch and the last validation top-1, plus one line per finished arm with its curve. """

    def __init__(self, cfg: 'ExperimentConfig') -> None:
        self.trainings = [(seed, arm) for seed in cfg.seeds for arm in training_order(cfg.arms, cfg.arm_table)]
        self.epochs = int(cfg.train.get('epochs', TrainConfig.epochs))
        self.bar = tqdm(total=len(self.trainings) * self.epochs, desc='preparing', disable=not cfg.progress,
                        bar_format='{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} epochs '
                                   '[{elapsed}<{remaining}]{postfix}')
        self.curve: List[float] = []
        self.label = ''

    def phase(self, text: str) -> None:
        """ Name what runs now between trainings (corrupting, evaluating). """
        self.bar.set_description_str(text)

    def start_training(self, seed: int, arm: str) -> None:
        k = self.trainings.index((seed, arm)) + 1
        seeds = '' if len({s for s, _ in self.trainings}) == 1 else f' seed {seed}'
        self.label = f'{arm}{seeds}'
        self.curve = []
        self.phase(f'arm {k}/{len(self.trainings)} {self.label}')
        self.bar.set_postfix_str(f'epoch 0/{self.epochs}')

    def epoch_done(self, val_top1: float) -> None:
        self.curve.append(val_top1)
        self.bar.set_postfix_str(f'epoch {len(self.curve)}/{self.epochs}, val top-1 {val_top1:.1f}%', refresh=False)
        self.bar.update()

    def training_done(self, history: List[Dict[str, float]], seconds: float, reused: bool) -> None:
        """ Complete the arm's share of the bar (all of it for a reused training) and print its validation curve. """
        self.bar.update(self.epochs - len(self.curve))
        curve = ' '.join(f'{h["val_top1"]:.0f}' for h in history)
        how = 'reused from an earlier run' if reused else f'{seconds:.0f} s'
        if not self.bar.disable:
            self.bar.write(f'{self.label}: val top-1 (%) per epoch {curve} ({how})', file=sys.stderr)

    def close(self) -> None:
        self.bar.close()


def _train_arm(
        cfg: ExperimentConfig,
        arm: str,
        seed: int,
        teacher: Optional[nn.Module],
        progress: RunProgress,
) -> Tuple[nn.Module, List[Dict[str, float]], float]:
    """ `(model, history, seconds)` of one arm, reloaded from its safetensors when that training already finished. """
    folder = Path(cfg.out_dir) / 'weights' / f'{arm}-seed{seed}'
    record = folder / 'history.json'
    # `progress` off: the run's own display covers every training
    overrides = {**cfg.train, **train_options(arm, cfg.arm_table), 'seed': seed, 'progress': False}
    train_cfg = TrainConfig.from_options(data_dir=cfg.data_dir, teacher=teacher, **overrides)
    if record.exists():
        saved = json.loads(record.read_text())
        model = timm.create_model(train_cfg.model, num_classes=saved['num_classes'], **train_cfg.model_kwargs)
        model.load_state_dict(load_file(str(folder / 'model.safetensors')))
        progress.training_done(saved['history'], saved['seconds'], reused=True)
        return model.eval(), saved['history'], saved['seconds']
    start = time.perf_counter()
    result = train(train_cfg, on_epoch=lambda record: progress.epoch_done(record['val_top1']))
    seconds = time.perf_counter() - start
    progress.training_done(result.history, seconds, reused=False)
    model = result.model.eval()
    if hasattr(model, 'set_token_label_training'):
        model.set_token_label_training(False)
    classes = list_classes(Path(cfg.data_dir) / 'train')
    write_weights_folder(
        model, folder, input_size=train_cfg.img_size, model_args=dict(train_cfg.model_kwargs),
        label_names=classes if len(classes) == model.num_classes else None,
        source=f'trained by the fan_stl demo ({arm}, seed {seed})', overwrite=True)
    write_json_atomic(record, {'num_classes': model.num_classes, 'history': result.history, 'seconds': seconds})
    return model, result.history, seconds


@locks_output_folder('cfg.out_dir')
def run_experiment(cfg: ExperimentConfig) -> List[ArmResult]:
    """ Train every arm for every seed, evaluate it clean and corrupted, and compare it with the baseline. """
    check_arms(cfg.arms, cfg.arm_table)
    claim_output_dir(cfg)
    out = Path(cfg.out_dir)
    if cfg.generate is not None:
        if cfg.progress:
            print(f'generating the image set in {cfg.data_dir} ...', file=sys.stderr, flush=True)
        make_shapes_dataset(Path(cfg.data_dir), **cfg.generate)
    _check(cfg)
    progress = RunProgress(cfg)
    try:
        progress.phase('corrupting the evaluation images')
        val = _eval_images(Path(cfg.data_dir) / 'val', out, cfg.eval_per_class)
        val_c = out / 'val-c'
        corrupt_folder(val, val_c, cfg.corruptions, cfg.severities, workers=cfg.workers, progress=False)
        results = [r for seed in cfg.seeds for r in _run_seed(cfg, seed, val, val_c, progress)]
    finally:
        progress.close()
    write_json_atomic(out / 'summary.json', [asdict(r) for r in results])
    plot_corruption_errors(
        {r.arm: {'imagenet_c': {'summary': {'corruption_errors': _mean_errors(results, r.arm)}}} for r in results},
        out / 'corruption_errors.png', title='Corruption error (%) per corruption, mean over severities and seeds')
    return results


def _run_seed(cfg: ExperimentConfig, seed: int, val: Path, val_c: Path, progress: RunProgress) -> List[ArmResult]:
    """ Train and evaluate every arm of one seed; mCE relative to that seed's baseline. """
    out = Path(cfg.out_dir)
    settings = EvalSettings(batch_size=cfg.eval_batch_size, img_size=cfg.train.get('img_size'), progress=False)
    trained: Dict[str, nn.Module] = {}
    runs: Dict[str, Tuple[Dict[str, Any], List[Dict[str, float]], float]] = {}
    for arm in training_order(cfg.arms, cfg.arm_table):  # teachers (tl) train before their students
        teacher_arm = teacher_of(arm, cfg.arm_table)
        teacher = None if teacher_arm is None else trained[teacher_arm]
        progress.start_training(seed, arm)
        model, history, seconds = _train_arm(cfg, arm, seed, teacher, progress)
        trained[arm] = model
        progress.phase(f'evaluating {arm} clean and corrupted')
        evaluated = evaluate_robustness(
            model, f'{arm}-seed{seed}', out / 'results' / f'{arm}-seed{seed}.json', clean=val, imagenet_c=val_c,
            settings=settings, corruptions=cfg.corruptions, source={'weights': f'weights/{arm}-seed{seed}'})
        runs[arm] = evaluated, history, seconds
    base = CorruptionBaseline.from_grid('baseline', error_grid(runs['baseline'][0]['imagenet_c']['cells']))
    token_labels = _token_labels(cfg, seed, trained, progress) if cfg.generate is not None else {}
    return [ArmResult(arm=arm, seed=seed, clean_top1=evaluated['clean']['top1'],
                      corruption_errors=evaluated['imagenet_c']['summary']['corruption_errors'],
                      mce_vs_baseline=mce(error_grid(evaluated['imagenet_c']['cells']), base, cfg.corruptions),
                      train_seconds=seconds, history=history, token_labels=token_labels.get(arm))
            for arm, (evaluated, history, seconds) in runs.items()]


def _token_labels(cfg: ExperimentConfig, seed: int, trained: Dict[str, nn.Module],
                  progress: RunProgress) -> Dict[str, Dict[str, float]]:
    """ On the generated set: each token-head arm's object / background token shares (`fan_stl.demo.token_maps`) over
    the whole validation split, and, for the first seed, the figure of one validation image per class. """
    heads = {arm: model for arm, model in trained.items() if has_token_head(model)}
    if not heads:
        return {}
    progress.phase('measuring where the token labels are')
    spec = {k: v for k, v in (cfg.generate or {}).items() if k in ('val_per_class', 'size', 'seed')}
    per_class = spec.pop('val_per_class', VAL_PER_CLASS)
    samples = val_samples_with_masks(per_class, **spec)
    logits = {arm: token_logits(model, samples) for arm, model in heads.items()}
    if seed == cfg.seeds[0]:
        first = slice(0, len(samples), per_class)  # the first validation image of each class
        plot_token_maps({arm: lg[first] for arm, lg in logits.items()}, samples[first], class_folder_names(),
                        Path(cfg.out_dir) / TOKEN_FIGURE)
    return {arm: localisation(lg, samples) for arm, lg in logits.items()}


def _mean_errors(results: Sequence[ArmResult], arm: str) -> Dict[str, float]:
    rows = [r.corruption_errors for r in results if r.arm == arm]
    return {c: mean(row[c] for row in rows) for c in rows[0]}


def _mean_std(values: Sequence[float]) -> str:
    return f'{mean(values):.2f}' + (f' ± {stdev(values):.2f}' if len(values) > 1 else '')


def format_comparison(results: Sequence[ArmResult]) -> str:
    """ One row per arm (mean ± std over seeds): clean top-1, mean corruption error and mCE vs baseline (= 100). """
    arms = list(dict.fromkeys(r.arm for r in results))
    corruptions = list(results[0].corruption_errors)
    header = ['arm', 'seeds', 'clean top-1 (%)', 'corruption error (%)', 'mCE vs baseline'] + corruptions
    rows = [header]
    for arm in arms:
        rs = [r for r in results if r.arm == arm]
        errors = _mean_errors(results, arm)
        rows.append([arm, str(len(rs)), _mean_std([r.clean_top1 for r in rs]),
                     _mean_std([mean(r.corruption_errors.values()) for r in rs]),
                     _mean_std([r.mce_vs_baseline for r in rs])] + [f'{errors[c]:.1f}' for c in corruptions])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ['| ' + ' | '.join(cell.ljust(w) for cell, w in zip(row, widths)) + ' |' for row in rows]
    lines.insert(1, '|' + '|'.join('-' * (w + 2) for w in widths) + '|')
    return '\n'.join(lines)

