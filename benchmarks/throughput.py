"""Inference and training throughput of FAN models and timm peers, eager and compiled, in one run.

GPU (the numbers the project's speed goals are stated in; H100, bf16 autocast, 224 px):
    python benchmarks/throughput.py --record
CPU smoke run (small batches, eager only unless --compile):
    python benchmarks/throughput.py --device cpu
Side by side with the official NVlabs/STL code (its `models/` folder fetched outside this repository, never
committed; the same weights are loaded into both, and the largest logit difference is reported):
    python benchmarks/throughput.py --official-dir /path/to/STL --models fan_small_12_p4_hybrid

Inference: eval mode, `torch.inference_mode`, batch 256 (GPU). Training: train mode, AdamW (lr 1e-4, wd 0.05),
cross-entropy on random labels, batch 128 (GPU). Peak memory from `torch.cuda.max_memory_allocated` after a reset
(weights, gradients, optimizer state and activations). Every model is measured in the same process; eager rounds
are interleaved (the second round visits the models in reverse order) and img/s is batch / median step time over
all timed steps. Compiled runs (`torch.compile`, default mode) are sequential; the first three calls are reported
as compile time. `--time-budget` skips the compiled runs that would start too late (marked so in the table), and
`--json` rewrites its file after every finished model, so a run stopped from outside keeps what it measured.
`--profile NAME ...` adds the torch profiler's top operators and kernels of a few eager steps of those models.
The table is printed; `--record` appends it, with the command, machine and versions, to benchmarks/RESULTS.md.
"""
import argparse
import ast
import copy
import datetime
import gc
import importlib.util
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn as nn

import timm
import timm.models._registry as timm_registry

import fan_stl
from fan_stl.models.fan import checkpoint_filter_fn
from fan_stl.utils.amp import amp_dtype
from fan_stl.utils.atomic import append_text_atomic
from fan_stl.utils.atomic import write_text_atomic
from fan_stl.utils.machine import machine_description, versions_line

DEFAULT_MODELS = [
    'fan_small_12_p4_hybrid', 'fan_s_hybrid_stl', 'fan_tiny_8_p4_hybrid', 'fan_large_16_p4_hybrid',
    'fan_small_12_p16_224', 'convnext_tiny', 'xcit_small_12_p16_224', 'vit_small_patch16_224', 'volo_d1_224',
]
# Official NVlabs code on one H100, bf16 (measured for this project) and the project's targets.
TARGETS = {
    'fan_small_12_p4_hybrid': dict(
        official='infer 2,689 eager / 7,333 compiled; train 886 @ 19.3 GiB eager / 1,994 @ 14.9 GiB compiled',
        goal='infer >= 4,000 eager / >= 9,500 compiled; train >= 1,300 @ <= 13 GiB eager / >= 2,600 @ <= 11 GiB'),
}
RESULTS = Path(__file__).with_name('RESULTS.md')
OFFICIAL_PACKAGE = '_official_stl_models'


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def _time_steps(step: Callable[[], None], device: torch.device, warmup: int, iters: int) -> List[float]:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(iters):
        _sync(device)
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def load_official(root: Path) -> ModuleType:
    """ The official NVlabs/STL `models/fan.py`, imported from `root/models` under timm >= 1.0 without editing it.

    Three names it imports were removed from or changed in timm 1.0; they are bridged for the import only:
    `build_model_with_cfg(default_cfg=...)` becomes `pretrained_cfg=`, and the two helpers used only by its FAN-Swin
    models raise if called. Its `@register_model` entries, which share our model names, are taken out of timm's
    registry again, so `timm.create_model` keeps building fan_stl's models; the official models are built by calling
    the returned module's entrypoints.
    """
    package = Path(root) / 'models'
    if not (package / 'fan.py').is_file():
        raise FileNotFoundError(
            f'{package / "fan.py"} not found: --official-dir must be a checkout of github.com/NVlabs/STL '
            f'(the folder that holds models/), kept outside this repository')
    import timm.models.helpers as helpers
    import timm.models.vision_transformer as vit
    build = helpers.build_model_with_cfg

    def build_compat(*args, default_cfg=None, **kwargs):
        return build(*args, pretrained_cfg=default_cfg, **kwargs)

    def swin_only(*args, **kwargs):
        raise RuntimeError('the official FAN-Swin models are not available under timm >= 1.0')

    bridges = {(helpers, 'build_model_with_cfg'): build_compat, (helpers, 'overlay_external_default_cfg'): swin_only,
               (vit, '_init_vit_weights'): swin_only}
    originals = {key: getattr(*key, None) for key in bridges}
    registry = {k: copy.deepcopy(v) for k, v in vars(timm_registry).items()
                if not k.startswith('__') and isinstance(v, (dict, set))}
    try:
        for (module, name), value in bridges.items():
            setattr(module, name, value)
        spec = importlib.util.spec_from_file_location(
            OFFICIAL_PACKAGE, package / '__init__.py', submodule_search_locations=[str(package)])
        official = importlib.util.module_from_spec(spec)
        sys.modules[OFFICIAL_PACKAGE] = official
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            spec.loader.exec_module(official)
    finally:
        for (module, name), value in originals.items():
            if value is None:
                delattr(module, name)
            else:
                setattr(module, name, value)
        for name, saved in registry.items():
            current = getattr(timm_registry, name)
            current.clear()
            current.update(saved)
    return sys.modules[f'{OFFICIAL_PACKAGE}.fan']


def build_pair(name: str, official: ModuleType) -> Dict[str, object]:
    """ `{'official': module, 'ours': module, 'max_abs_diff': float}`: both models with the official model's
    (random, seed 0) weights, compared on one fp32 CPU batch in eval mode. """
    if not hasattr(official, name):
        raise ValueError(f'the official code has no model {name!r}')
    torch.manual_seed(0)
    theirs = getattr(official, name)(pretrained=False)
    ours = timm.create_model(name)
    ours.load_state_dict(checkpoint_filter_fn(theirs.state_dict(), ours), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        diff = (theirs.eval()(x) - ours.eval()(x)).abs().max().item()
    return {'official': theirs, 'ours': ours, 'max_abs_diff': diff}


class Bench:
    """ One model in one mode: builds it once and times inference and training steps on demand. """

    def __init__(self, name: str, args: argparse.Namespace, device: torch.device, compiled: bool,
                 model: Optional[nn.Module] = None, source: str = 'fan_stl / timm'):
        self.name, self.args, self.device, self.compiled, self.source = name, args, device, compiled, source
        self.model = (model if model is not None else timm.create_model(name, **args.model_kwargs)).to(device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model, backend=args.compile_backend) if compiled else self.model
        self.params_m = sum(p.numel() for p in self.model.parameters()) / 1e6
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.infer_times: List[float] = []
        self.train_times: List[float] = []
        self.compile_s: Dict[str, float] = {}
        self.peak_gib: Dict[str, float] = {}
        self.error: Optional[str] = None

    @property
    def amp(self):
        """ bf16 autocast for the device the model is on now (eager models move between CPU and GPU). """
        return torch.autocast(self.device.type, dtype=amp_dtype('bfloat16')) if self.args.amp else _NullContext()

    def _batch(self, size: int) -> torch.Tensor:
        x = torch.randn(size, 3, self.args.img_size, self.args.img_size, device=self.device)
        return x.to(memory_format=torch.channels_last) if self.args.channels_last else x

    def _measure(self, kind: str, step: Callable[[], None], warmup: int, iters: int) -> List[float]:
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        if self.compiled and kind not in self.compile_s:
            _sync(self.device)
            start = time.perf_counter()
            for _ in range(3):  # compilation plus any guard-driven recompiles
                step()
            _sync(self.device)
            self.compile_s[kind] = time.perf_counter() - start
        times = _time_steps(step, self.device, warmup, iters)
        if self.device.type == 'cuda':
            peak = torch.cuda.max_memory_allocated(self.device) / 2 ** 30
            self.peak_gib[kind] = max(peak, self.peak_gib.get(kind, 0.))
        return times

    def run_inference(self, warmup: int, iters: int) -> None:
        self.model.eval()
        x = self._batch(self.args.infer_batch)

        def step():
            with torch.inference_mode(), self.amp:
                self.forward(x)
        self.infer_times += self._measure('infer', step, warmup, iters)

    def run_training(self, warmup: int, iters: int) -> None:
        self.model.train()
        x = self._batch(self.args.train_batch)
        target = torch.randint(0, 1000, (self.args.train_batch,), device=self.device)
        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.05)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            with self.amp:
                out = self.forward(x)
                loss = loss_fn(out[0] if isinstance(out, tuple) else out, target)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        self.train_times += self._measure('train', step, warmup, iters)

    def release(self) -> None:
        self.model = self.forward = self.optimizer = None
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()

    def record(self) -> Dict[str, object]:
        """ Machine-readable numbers (None where not measured). """
        def rate(times: List[float], batch: int) -> Optional[float]:
            return batch / statistics.median(times) if times else None
        return {
            'model': self.name, 'source': self.source, 'mode': 'compiled' if self.compiled else 'eager',
            'params_m': self.params_m, 'infer_img_s': rate(self.infer_times, self.args.infer_batch),
            'train_img_s': rate(self.train_times, self.args.train_batch),
            'infer_peak_gib': self.peak_gib.get('infer'), 'train_peak_gib': self.peak_gib.get('train'),
            'compile_s': self.compile_s or None, 'infer_steps': len(self.infer_times),
            'train_steps': len(self.train_times), 'note': self.error or '',
        }


def table_row(record: Dict[str, object]) -> Dict[str, str]:
    def num(key: str, fmt: str) -> str:
        return '-' if record.get(key) is None else format(record[key], fmt)
    compile_s = record.get('compile_s') or {}
    return {
        'model': record['model'], 'source': record['source'], 'mode': record['mode'],
        'params (M)': num('params_m', '.2f'), 'infer img/s': num('infer_img_s', ',.1f'),
        'infer peak GiB': num('infer_peak_gib', '.2f'), 'train img/s': num('train_img_s', ',.1f'),
        'train peak GiB': num('train_peak_gib', '.2f'),
        'compile s (infer / train)': ' / '.join(f'{compile_s[k]:.0f}' for k in ('infer', 'train') if k in compile_s)
        or '-', 'note': str(record.get('note') or ''),
    }


class _NullContext:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _guarded(bench: Bench, fn: Callable[[], None]) -> None:
    if bench.error:
        return
    try:
        fn()
    except torch.cuda.OutOfMemoryError:
        bench.error = 'out of memory'
    except Exception as e:  # one model failing must not lose the others' numbers
        bench.error = f'{type(e).__name__}: {str(e).splitlines()[0][:80]}'


def profile_steps(bench: Bench, steps: int = 3, rows: int = 15) -> str:
    """ The top operators / kernels by self time over a few inference and training steps of an eager model. """
    from torch.profiler import ProfilerActivity, profile
    gpu = bench.device.type == 'cuda'
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if gpu else [])
    tables = []
    for kind, run_steps in (('inference', bench.run_inference), ('training', bench.run_training)):
        run_steps(1, 0)  # warm-up outside the profile
        with profile(activities=activities) as prof:
            run_steps(0, steps)
        sort = 'self_device_time_total' if gpu else 'self_cpu_time_total'
        tables.append(f'{kind}, {steps} steps, sorted by {sort}:\n'
                      + prof.key_averages().table(sort_by=sort, row_limit=rows, max_name_column_width=60))
    return '\n\n'.join(tables)


class Report:
    """ The records measured so far and the run's facts; rewrites `--json` (atomically) whenever it changes. """

    def __init__(self, args: argparse.Namespace, device: torch.device):
        self.args, self.records = args, []
        self.meta: Dict[str, object] = {
            'machine': machine_description(device), 'versions': versions_line(torch, timm, fan_stl),
            'img_size': args.img_size,
            'infer_batch': args.infer_batch, 'train_batch': args.train_batch, 'amp': 'bf16' if args.amp else 'fp32',
            'rounds': args.rounds, 'iters': args.iters, 'channels_last': args.channels_last, 'agreement': {},
            'profiles': {}}
        self.save()

    def add(self, record: Dict[str, object]) -> None:
        self.records.append(record)
        self.save()

    def replace_last(self, record: Dict[str, object]) -> None:
        self.records[-1] = record
        self.save()

    def save(self) -> None:
        if self.args.json:
            write_text_atomic(Path(self.args.json), json.dumps({**self.meta, 'rows': self.records}, indent=1))


def run(args: argparse.Namespace, device: torch.device, report: Report) -> None:
    deadline = time.perf_counter() + args.time_budget if args.time_budget else None
    official = load_official(args.official_dir) if args.official_dir else None
    # eager: interleaved rounds, every model kept resident only while measured; official twins built from the
    # same weights right after their fan_stl counterparts
    eager: List[Bench] = []
    for name in args.models:
        if official is not None and name in args.official_models:
            pair = build_pair(name, official)
            report.meta['agreement'][name] = pair['max_abs_diff']
            eager += [Bench(name, args, torch.device('cpu'), False, pair['ours']),
                      Bench(name, args, torch.device('cpu'), False, pair['official'], source='official NVlabs/STL')]
        else:
            eager.append(Bench(name, args, torch.device('cpu'), compiled=False))
    for round_index in range(args.rounds):
        order = eager if round_index % 2 == 0 else list(reversed(eager))
        for bench in order:
            bench.model.to(device)
            bench.device = device
            warmup = args.warmup if round_index == 0 else 1
            _guarded(bench, lambda: bench.run_inference(warmup, args.iters))
            if not args.no_train:
                _guarded(bench, lambda: bench.run_training(warmup, args.iters))
            bench.model.to('cpu')
            bench.optimizer = None
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            print(f'eager round {round_index + 1}: {bench.name} ({bench.source}) done', file=sys.stderr, flush=True)
    for bench in eager:
        report.add(bench.record())
    for bench in (b for b in eager if b.name in args.profile and not b.error):
        bench.model.to(device)
        bench.device = device
        try:
            report.meta['profiles'][f'{bench.name} ({bench.source}, eager)'] = profile_steps(bench)
        except Exception as e:  # a profiler failure must not lose the measurements
            report.meta['profiles'][f'{bench.name} ({bench.source}, eager)'] = f'profiler failed: {e}'
        bench.model.to('cpu')
        bench.optimizer = None
        report.save()
        print(f'profiled: {bench.name} ({bench.source})', file=sys.stderr, flush=True)
    compiled_sources = [(b.name, b.source, b.model) for b in eager] if args.compile else []
    for bench in eager:
        bench.release()
    for name, source, model in compiled_sources:
        if deadline is not None and deadline - time.perf_counter() < args.compile_reserve:
            report.add({'model': name, 'source': source, 'mode': 'compiled', 'note': 'skipped: time budget'})
            continue
        torch._dynamo.reset()
        bench = Bench(name, args, device, compiled=True, model=model, source=source)
        _guarded(bench, lambda: bench.run_inference(args.warmup, args.iters * args.rounds))
        report.add(bench.record())  # kept even if the compiled training below is stopped from outside
        if not args.no_train:
            _guarded(bench, lambda: bench.run_training(args.warmup, args.iters * args.rounds))
            report.replace_last(bench.record())
        bench.release()
        print(f'compiled: {name} ({source}) done', file=sys.stderr, flush=True)


def format_table(records: List[Dict[str, object]]) -> str:
    rows = [table_row(r) for r in records]
    cols = list(rows[0])
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' for _ in cols) + '|']
    lines += ['| ' + ' | '.join(r[c] for c in cols) + ' |' for r in rows]
    return '\n'.join(lines)


def _keyword(parser: argparse.ArgumentParser, item: str) -> Tuple[str, Any]:
    key, sep, value = item.partition('=')
    if not sep or not key:
        parser.error(f'--model-kwargs takes KEY=VALUE items, not {item!r}')
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--models', nargs='+', default=DEFAULT_MODELS)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--img-size', type=int, default=224)
    parser.add_argument('--infer-batch', type=int, help='default 256 on GPU, 8 on CPU')
    parser.add_argument('--train-batch', type=int, help='default 128 on GPU, 4 on CPU')
    parser.add_argument('--warmup', type=int, help='warm-up steps (default 5 GPU, 1 CPU)')
    parser.add_argument('--iters', type=int, help='timed steps per round (default 10 GPU, 3 CPU)')
    parser.add_argument('--rounds', type=int, default=2, help='interleaved eager rounds')
    parser.add_argument('--compile', action=argparse.BooleanOptionalAction, default=None,
                        help='also measure torch.compile (default: on for GPU, off for CPU)')
    parser.add_argument('--compile-backend', default='inductor',
                        help='torch.compile backend (default inductor; "eager" only checks the capture, for tests)')
    parser.add_argument('--no-amp', dest='amp', action='store_false', help='fp32 instead of bf16 autocast')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--no-train', action='store_true', help='inference only')
    parser.add_argument('--model-kwargs', nargs='*', default=[], metavar='KEY=VALUE',
                        help='extra create_model arguments for every model, e.g. depth=1 (Python literals)')
    parser.add_argument('--official-dir', type=Path, metavar='DIR',
                        help='checkout of github.com/NVlabs/STL (outside this repository): also time its models')
    parser.add_argument('--official-models', nargs='+', default=['fan_small_12_p4_hybrid'], metavar='NAME',
                        help='models timed in both implementations with --official-dir')
    parser.add_argument('--time-budget', type=float, metavar='SECONDS',
                        help='skip the compiled runs that would start with less than --compile-reserve seconds left')
    parser.add_argument('--compile-reserve', type=float, default=60., metavar='SECONDS',
                        help='time one compiled model needs at least (default 60)')
    parser.add_argument('--profile', nargs='*', default=[], metavar='NAME',
                        help='after the eager rounds, torch-profile a few steps of these models (top kernels)')
    parser.add_argument('--json', type=Path, metavar='FILE', help='also write every number to this JSON file')
    parser.add_argument('--record', action='store_true', help='append the table to benchmarks/RESULTS.md')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == 'cuda'
    if gpu and not torch.cuda.is_available():
        parser.error('--device cuda but torch sees no CUDA GPU; use --device cpu')
    args.infer_batch = args.infer_batch or (256 if gpu else 8)
    args.train_batch = args.train_batch or (128 if gpu else 4)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.iters = args.iters or (10 if gpu else 3)
    args.compile = gpu if args.compile is None else args.compile
    args.model_kwargs = dict(_keyword(parser, item) for item in args.model_kwargs)
    if args.model_kwargs and args.official_dir:
        parser.error('--model-kwargs changes the architectures; it cannot be combined with --official-dir')
    if gpu:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    unknown = [m for m in args.models if not timm.is_model(m)]
    if unknown:
        parser.error(f'unknown model(s) {unknown}; `python -m fan_stl list` and timm.list_models() show the names')
    report = Report(args, device)
    run(args, device, report)
    table = format_table(report.records)
    print(table)
    agreement = [f'- same weights in both implementations: max |logit difference| {d:.2e} for {name} '
                 f'(fp32, CPU, eval mode)' for name, d in report.meta['agreement'].items()]
    for line in agreement:
        print(line)
    for name, table in report.meta['profiles'].items():
        print(f'\nprofile of {name}\n{table}')
    notes = [f'- {name}: official code {t["official"]}; goal {t["goal"]}' for name, t in TARGETS.items()
             if name in args.models and gpu]
    if args.record:
        header = (
            f'\n## throughput.py — {datetime.date.today().isoformat()}\n\n'
            f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
            f'- machine: {report.meta["machine"]}\n'
            f'- versions: {report.meta["versions"]}\n'
            f'- settings: {args.img_size} px, {"bf16 autocast" if args.amp else "fp32"}, inference batch '
            f'{args.infer_batch}, training batch {args.train_batch} (AdamW), {args.rounds} interleaved eager rounds '
            f'x {args.iters} timed steps, medians{", channels_last" if args.channels_last else ""}\n')
        append_text_atomic(RESULTS, header + ''.join(line + '\n' for line in notes + agreement) + '\n' + table + '\n')
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
