"""Inference and training throughput of FAN models and timm peers, eager and compiled, in one run.

GPU (the numbers the project's speed goals are stated in; H100, bf16 autocast, 224 px):
    python benchmarks/throughput.py
CPU smoke run (small batches, eager only unless --compile):
    python benchmarks/throughput.py --device cpu

Inference: eval mode, `torch.inference_mode`, batch 256 (GPU). Training: train mode, AdamW (lr 1e-4, wd 0.05),
cross-entropy on random labels, batch 128 (GPU), peak memory from `torch.cuda.max_memory_allocated`. Every model is
measured in the same process; eager rounds are interleaved (the second round visits the models in reverse order)
and img/s is batch / median step time over all timed steps. The table is printed and appended, with the command,
machine and versions, to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import gc
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
import torch.nn as nn

import timm

import fan_stl

DEFAULT_MODELS = [
    'fan_small_12_p4_hybrid', 'fan_s_hybrid_stl', 'fan_tiny_8_p4_hybrid', 'fan_large_16_p4_hybrid',
    'fan_small_12_p16_224', 'convnext_tiny', 'xcit_small_12_p16_224', 'vit_small_patch16_224', 'volo_d1_224',
]
# Official NVlabs code on one H100, bf16 (../shared/spec/perf_anchors_h100.md) and the project's targets.
TARGETS = {
    'fan_small_12_p4_hybrid': dict(
        official='infer 2,689 eager / 7,333 compiled; train 886 @ 19.3 GiB eager / 1,994 @ 14.9 GiB compiled',
        goal='infer >= 4,000 eager / >= 9,500 compiled; train >= 1,300 @ <= 13 GiB eager / >= 2,600 @ <= 11 GiB'),
}
RESULTS = Path(__file__).with_name('RESULTS.md')


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


class Bench:
    """ One model in one mode: builds it once and times inference and training steps on demand. """

    def __init__(self, name: str, args: argparse.Namespace, device: torch.device, compiled: bool):
        self.name, self.args, self.device, self.compiled = name, args, device, compiled
        self.model = timm.create_model(name).to(device)
        if args.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if compiled else self.model
        self.params_m = sum(p.numel() for p in self.model.parameters()) / 1e6
        self.amp = torch.autocast(device.type, dtype=torch.bfloat16) if args.amp else _NullContext()
        self.optimizer: Optional[torch.optim.Optimizer] = None
        self.infer_times: List[float] = []
        self.train_times: List[float] = []
        self.peak_gib: Optional[float] = None
        self.error: Optional[str] = None

    def _batch(self, size: int) -> torch.Tensor:
        x = torch.randn(size, 3, self.args.img_size, self.args.img_size, device=self.device)
        return x.to(memory_format=torch.channels_last) if self.args.channels_last else x

    def run_inference(self, warmup: int, iters: int) -> None:
        self.model.eval()
        x = self._batch(self.args.infer_batch)

        def step():
            with torch.inference_mode(), self.amp:
                self.forward(x)
        self.infer_times += _time_steps(step, self.device, warmup, iters)

    def run_training(self, warmup: int, iters: int) -> None:
        self.model.train()
        x = self._batch(self.args.train_batch)
        target = torch.randint(0, 1000, (self.args.train_batch,), device=self.device)
        if self.optimizer is None:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=0.05)
        loss_fn = nn.CrossEntropyLoss()

        def step():
            with self.amp:
                loss = loss_fn(self.forward(x), target)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if self.device.type == 'cuda':
            torch.cuda.reset_peak_memory_stats(self.device)
        self.train_times += _time_steps(step, self.device, warmup, iters)
        if self.device.type == 'cuda':
            self.peak_gib = torch.cuda.max_memory_allocated(self.device) / 2 ** 30

    def release(self) -> None:
        self.model = self.forward = self.optimizer = None
        gc.collect()
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()

    def row(self) -> Dict[str, str]:
        def rate(times: List[float], batch: int) -> str:
            return f'{batch / statistics.median(times):,.1f}' if times else '-'
        return {
            'model': self.name, 'mode': 'compiled' if self.compiled else 'eager', 'params (M)': f'{self.params_m:.2f}',
            'infer img/s': rate(self.infer_times, self.args.infer_batch),
            'train img/s': rate(self.train_times, self.args.train_batch),
            'train peak GiB': f'{self.peak_gib:.2f}' if self.peak_gib is not None else '-',
            'note': self.error or '',
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


def run(args: argparse.Namespace, device: torch.device) -> List[Dict[str, str]]:
    rows = []
    # eager: interleaved rounds, every model kept resident only while measured
    eager = [Bench(n, args, torch.device('cpu'), compiled=False) for n in args.models]
    for round_index in range(args.rounds):
        order = eager if round_index % 2 == 0 else list(reversed(eager))
        for bench in order:
            bench.model.to(device)
            warmup = args.warmup if round_index == 0 else 1
            _guarded(bench, lambda: bench.run_inference(warmup, args.iters))
            if not args.no_train:
                _guarded(bench, lambda: bench.run_training(warmup, args.iters))
            bench.model.to('cpu')
            bench.optimizer = None
            if device.type == 'cuda':
                torch.cuda.empty_cache()
            print(f'eager round {round_index + 1}: {bench.name} done', file=sys.stderr)
    rows += [b.row() for b in eager]
    for b in eager:
        b.release()
    if args.compile:
        for name in args.models:
            torch._dynamo.reset()
            bench = Bench(name, args, device, compiled=True)
            _guarded(bench, lambda: bench.run_inference(args.warmup, args.iters * args.rounds))
            if not args.no_train:
                _guarded(bench, lambda: bench.run_training(args.warmup, args.iters * args.rounds))
            rows.append(bench.row())
            bench.release()
            print(f'compiled: {name} done', file=sys.stderr)
    return rows


def format_table(rows: List[Dict[str, str]]) -> str:
    cols = list(rows[0])
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' for _ in cols) + '|']
    lines += ['| ' + ' | '.join(r[c] for c in cols) + ' |' for r in rows]
    return '\n'.join(lines)


def machine_description(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}'
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'CPU {cpu}, {torch.get_num_threads()} threads'


def main(argv: Optional[List[str]] = None) -> int:
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
    parser.add_argument('--no-amp', dest='amp', action='store_false', help='fp32 instead of bf16 autocast')
    parser.add_argument('--channels-last', action='store_true')
    parser.add_argument('--no-train', action='store_true', help='inference only')
    parser.add_argument('--no-record', action='store_true', help='do not append to benchmarks/RESULTS.md')
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    gpu = device.type == 'cuda'
    args.infer_batch = args.infer_batch or (256 if gpu else 8)
    args.train_batch = args.train_batch or (128 if gpu else 4)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    args.iters = args.iters or (10 if gpu else 3)
    args.compile = gpu if args.compile is None else args.compile
    if gpu:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    unknown = [m for m in args.models if not timm.is_model(m)]
    if unknown:
        parser.error(f'unknown model(s) {unknown}; `python -m fan_stl list` and timm.list_models() show the names')
    rows = run(args, device)
    table = format_table(rows)
    print(table)
    notes = [f'- {name}: official code {t["official"]}; goal {t["goal"]}' for name, t in TARGETS.items()
             if name in args.models and gpu]
    if not args.no_record:
        header = (
            f'\n## throughput.py — {datetime.date.today().isoformat()}\n\n'
            f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`\n'
            f'- machine: {machine_description(device)}\n'
            f'- versions: python {platform.python_version()}, torch {torch.__version__}, timm {timm.__version__}, '
            f'fan_stl {fan_stl.__version__}\n'
            f'- settings: {args.img_size} px, {"bf16 autocast" if args.amp else "fp32"}, inference batch '
            f'{args.infer_batch}, training batch {args.train_batch} (AdamW), {args.rounds} interleaved eager rounds '
            f'x {args.iters} timed steps, medians{", channels_last" if args.channels_last else ""}\n')
        with RESULTS.open('a') as f:
            f.write(header + ('\n'.join(notes) + '\n' if notes else '') + '\n' + table + '\n')
        print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
