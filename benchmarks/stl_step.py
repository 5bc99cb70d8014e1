"""Step time of an STL stage-2 step vs a plain cross-entropy step of the same student on the same batch.

STL step: the task `build_task` makes for stage stl on a paired batch (frozen teacher token labels on the teacher view,
no grad, same autocast) + student forward with token logits + TokenLabelLoss + backward + AdamW step. Plain step:
student class logits + cross-entropy + backward + AdamW step. Prints a table and
appends the results to benchmarks/RESULTS.md (append only).

    python benchmarks/stl_step.py --model fan_t_hybrid_stl --batch-size 8 --img-size 128 --iters 10
"""
import argparse
import platform
import statistics
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

import timm

import fan_stl  # noqa: F401  (registers the models)
from fan_stl.stl.config import STLConfig
from fan_stl.stl.task import build_task
from fan_stl.stl.views import pair_views

RESULTS = Path(__file__).resolve().parent / 'RESULTS.md'


def _timed(step, device: torch.device) -> float:
    if device.type == 'cuda':
        torch.cuda.synchronize()
    start = time.perf_counter()
    step()
    if device.type == 'cuda':
        torch.cuda.synchronize()
    return time.perf_counter() - start


def time_interleaved(steps: dict, iters: int, warmup: int, device: torch.device) -> dict:
    """ Seconds per step of each named step, run alternately (order flipped each round) so load drifts hit both. """
    times = {name: [] for name in steps}
    for i in range(warmup + iters):
        for name in (list(steps) if i % 2 else list(steps)[::-1]):
            elapsed = _timed(steps[name], device)
            if i >= warmup:
                times[name].append(elapsed)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', default='fan_t_hybrid_stl')
    parser.add_argument('--teacher', default=None, help='teacher architecture (default: the student\'s *_tl twin)')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--img-size', type=int, default=128)
    parser.add_argument('--num-classes', type=int, default=1000)
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--amp-dtype', default=None, help='autocast dtype, e.g. bfloat16 (default: off on CPU)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()

    device = torch.device(args.device)
    autocast = (lambda: torch.autocast(device.type, dtype=getattr(torch, args.amp_dtype))) if args.amp_dtype \
        else nullcontext
    student = timm.create_model(args.model, num_classes=args.num_classes).to(device).train()
    teacher_name = args.teacher or args.model.replace('_stl', '_tl')
    teacher = timm.create_model(teacher_name, num_classes=args.num_classes).to(device)
    task = build_task(STLConfig(stage='stl', teacher=teacher), student, device=device, autocast=autocast)
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-4)
    x = torch.randn(args.batch_size, 3, args.img_size, args.img_size, device=device)
    paired = pair_views(x, x)
    y = torch.randint(0, args.num_classes, (args.batch_size,), device=device)

    def optimize(loss):
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def plain_step():
        student.set_token_label_training(False)
        student.fuse_token_logits = False
        with autocast():
            optimize(F.cross_entropy(student(x).float(), y, label_smoothing=0.1))

    def stl_step():
        student.set_token_label_training(True)
        with autocast():
            optimize(task(paired, y)['loss'])

    times = time_interleaved({'plain': plain_step, 'stl': stl_step}, args.iters, args.warmup, device)
    plain_ms, stl_ms = (1e3 * statistics.median(times[name]) for name in ('plain', 'stl'))
    machine = torch.cuda.get_device_name(device) if device.type == 'cuda' else \
        f'CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads'
    rows = [('plain CE step', plain_ms), ('STL stage-2 step', stl_ms)]
    table = ['| step | median ms |', '|---|---|'] + [f'| {name} | {ms:.1f} |' for name, ms in rows]
    table.append(f'| ratio STL / plain | {stl_ms / plain_ms:.2f}x |')
    print('\n'.join(table))
    where = 'GPU' if device.type == 'cuda' else 'CPU only (no GPU available to this run)'
    with RESULTS.open('a') as f:
        f.write(
            f'\n## stl_step: {args.model} (teacher {teacher_name}), batch {args.batch_size}, {args.img_size} px, '
            f'{args.num_classes} classes, amp {args.amp_dtype or "off"}\n\n'
            f'- command: `python {" ".join(sys.argv)}`\n'
            f'- machine: {machine}; python {platform.python_version()}, torch {torch.__version__}, '
            f'timm {timm.__version__}\n'
            f'- {args.iters} timed steps each after {args.warmup} warm-up rounds, run alternately; medians; {where}\n\n'
            + '\n'.join(table) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
