"""FAN-T-Hybrid against a CNN encoder of similar size through smp on CamVid: clean and corrupted (CamVid-C) mIoU.

GPU (the benchmark's real setting: 480 x 352, the standard 15 corruptions at severities 1-5):
    python benchmarks/segmentation.py --mode gpu --device cuda --record
CPU, reduced (smaller images, few epochs, 5 corruptions at severities 1 / 3 / 5; about 30 min on two idle cores):
    python benchmarks/segmentation.py --mode cpu --record
From pretrained encoders (e.g. the demo's or reproduce_small.py's checkpoint; default: from scratch, no network):
    python benchmarks/segmentation.py --encoder-checkpoint fan.pth --baseline-checkpoint resnet18.pth

Both encoders get the same recipe: smp `--arch` (Unet) with `classes=11`, AdamW with a cosine schedule, cross-entropy
with void (11) ignored, random horizontal flips, CamVid train (367 images) resized to `--size`; evaluation on the
test split (233 images) clean and corrupted (the CamVid-C tree is written once under `--out` and read for both
models; masks untouched), through `fan_stl.segmentation.evaluate_segmentation` (results JSON per model under
`--out`). The table is printed; `--record` appends it with the command, machine, load and versions to RESULTS.md.
"""
import argparse
import datetime
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import timm
import fan_stl
from fan_stl.segmentation import (
    NUM_CLASSES, VOID, CamVid, SegEvalSettings, build_segmenter, evaluate_segmentation, input_multiple,
    save_segmenter,
)
from fan_stl.utils.atomic import append_text_atomic

RESULTS = Path(__file__).with_name('RESULTS.md')
DATA = Path(__file__).resolve().parents[1].parent / 'shared' / 'data' / 'camvid'
MODES = {
    'cpu': dict(size=[96, 128], epochs=4, batch_size=8, lr=2e-3,
                corruptions=['gaussian_noise', 'defocus_blur', 'fog', 'contrast', 'jpeg_compression'],
                severities=[1, 3, 5]),
    'gpu': dict(size=[352, 480], epochs=120, batch_size=8, lr=1e-3,
                corruptions=['gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur',
                             'motion_blur', 'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast',
                             'elastic_transform', 'pixelate', 'jpeg_compression'],
                severities=[1, 2, 3, 4, 5]),
}
LIMITS = ("from scratch, CamVid's 367 training images are far too few for a ViT-style encoder to learn what "
          'ImageNet pretraining gives it: these numbers compare how fast each encoder learns from little data at '
          'this recipe, not the backbones FAN and STL report (Cityscapes / Cityscapes-C after ImageNet '
          'pretraining); the CPU mode trains a few epochs at reduced size, so its mIoU is far from converged and its '
          'corrupted / clean ratio is that of a weak model; one seed, so a gap of a few points between the rows is '
          'not shown to exceed the seed-to-seed spread (not measured)')


def train(model: torch.nn.Module, dataset: CamVid, args: argparse.Namespace) -> float:
    """ AdamW + per-step cosine schedule, cross-entropy with void ignored; returns the wall time in seconds. """
    loader = DataLoader(dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.workers, drop_last=True,
                        generator=torch.Generator().manual_seed(args.seed))
    steps = args.epochs * len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.to(args.device).train()
    start = time.perf_counter()
    for epoch in range(args.epochs):
        total = 0.
        for x, y in loader:
            loss = F.cross_entropy(model(x.to(args.device)), y.to(args.device), ignore_index=VOID)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        print(f'  epoch {epoch + 1}/{args.epochs}: loss {total / len(loader):.3f} '
              f'({(time.perf_counter() - start) / 60:.1f} min)', flush=True)
    return time.perf_counter() - start


def run_encoder(encoder: str, checkpoint: str, args: argparse.Namespace) -> Dict[str, object]:
    torch.manual_seed(args.seed)
    model = build_segmenter(args.arch, encoder, NUM_CLASSES, encoder_checkpoint=checkpoint)
    multiple = input_multiple(model)
    train_set = CamVid(args.data, 'train', args.size, multiple, flip=True, limit=args.train_limit)
    print(f'{args.arch} on {encoder}: training on {len(train_set)} images at {args.size[0]}x{args.size[1]}',
          flush=True)
    seconds = train(model, train_set, args)
    name = f'{args.arch.lower()}_{encoder}'
    if args.save:
        save_segmenter(model, Path(args.out) / f'{name}.pth', args.arch, encoder, NUM_CLASSES,
                       {'epochs': args.epochs, 'size': args.size, 'encoder_checkpoint': checkpoint})
    settings = SegEvalSettings(size=tuple(args.size), batch_size=args.batch_size, workers=args.workers,
                               device=args.device, limit=args.test_limit)
    results = evaluate_segmentation(model, name, args.data, Path(args.out) / f'{name}.json', args.corruptions,
                                    args.severities, settings, camvid_c=Path(args.out) / 'camvid-c',
                                    source={'benchmark': 'segmentation.py', 'epochs': args.epochs,
                                            'encoder_checkpoint': checkpoint}, overwrite=True, progress=False)
    s = results['summary']
    return {'encoder': encoder, 'params': sum(p.numel() for p in model.parameters()) / 1e6,
            'encoder_params': sum(p.numel() for p in model.encoder.parameters()) / 1e6,
            'train_min': seconds / 60, 'clean': s['clean_miou'], 'corrupted': s['mean_corrupted_miou'],
            'ratio': s['ratio_to_clean'], 'per_corruption': s['per_corruption'],
            'from': 'checkpoint' if checkpoint else 'scratch'}


def format_table(rows: List[Dict[str, object]]) -> str:
    corruptions = list(rows[0]['per_corruption'])
    lines = ['| encoder | init | params (M, encoder) | train min | clean mIoU | mean corrupted mIoU | ratio | '
             + ' | '.join(corruptions) + ' |',
             '|---|---|---|---|---|---|---|' + '---|' * len(corruptions)]
    for r in rows:
        lines.append(f'| {r["encoder"]} | {r["from"]} | {r["params"]:.2f} ({r["encoder_params"]:.2f}) | '
                     f'{r["train_min"]:.1f} | {r["clean"]:.2f} | {r["corrupted"]:.2f} | {r["ratio"]:.3f} | '
                     + ' | '.join(f'{r["per_corruption"][c]:.2f}' for c in corruptions) + ' |')
    return '\n'.join(lines)


def machine(device: str) -> str:
    if device.startswith('cuda'):
        return f'{torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}'
    cpu = platform.machine()
    try:
        cpu = next(line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    load = ', load average {:.2f} / {:.2f} / {:.2f} (1 / 5 / 15 min) at the end'.format(*os.getloadavg())
    threads = torch.get_num_threads()
    return f'CPU {cpu}, {threads} thread{"s" if threads > 1 else ""}{load}'


def parse_args(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--mode', choices=list(MODES), default='cpu', help='defaults of the settings below')
    parser.add_argument('--data', default=str(DATA), help='CamVid folder (default ../shared/data/camvid)')
    parser.add_argument('--out', default='segmentation-benchmark', help='results, CamVid-C tree, checkpoints')
    parser.add_argument('--arch', default='Unet', help='smp architecture (default Unet)')
    parser.add_argument('--encoder', default='fan_tiny_8_p4_hybrid')
    parser.add_argument('--baseline', default='resnet18', help='CNN encoder (e.g. resnet18, convnext_atto)')
    parser.add_argument('--encoder-checkpoint', help='start the FAN encoder from this checkpoint (any class count)')
    parser.add_argument('--baseline-checkpoint', help='start the CNN encoder from this checkpoint')
    parser.add_argument('--size', type=int, nargs=2, metavar=('H', 'W'))
    parser.add_argument('--epochs', type=int)
    parser.add_argument('--batch-size', type=int)
    parser.add_argument('--lr', type=float)
    parser.add_argument('--weight-decay', type=float, default=0.01)
    parser.add_argument('--corruptions', nargs='+')
    parser.add_argument('--severities', type=int, nargs='+')
    parser.add_argument('--train-limit', type=int, help='first N training images only')
    parser.add_argument('--test-limit', type=int, help='first N test images only')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--threads', type=int, default=2, help='CPU threads (default 2)')
    parser.add_argument('--workers', type=int, default=0)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--save', action='store_true', help='save the trained models under --out')
    parser.add_argument('--record', action='store_true', help='append the table to benchmarks/RESULTS.md')
    args = parser.parse_args(argv)
    for key, value in MODES[args.mode].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: List[str]) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (Path(args.data) / 'train').is_dir():
        print(f'error: no CamVid at {args.data} (train/, trainannot/, test/, testannot/); pass --data', file=sys.stderr)
        return 1
    start = time.perf_counter()
    try:
        rows = [run_encoder(args.encoder, args.encoder_checkpoint, args),
                run_encoder(args.baseline, args.baseline_checkpoint, args)]
    except (ValueError, OSError, ImportError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 1
    table = format_table(rows)
    print(table)
    if args.record:
        settings = (f'{args.arch}, {args.size[0]}x{args.size[1]}, {args.epochs} epochs, batch {args.batch_size}, '
                    f'AdamW lr {args.lr} wd {args.weight_decay} cosine, seed {args.seed}, train images '
                    f'{args.train_limit or "all"}, test images {args.test_limit or "all"}, corruptions at '
                    f'severities {", ".join(map(str, args.severities))} ({SegEvalSettings.backend} backend)')
        append_text_atomic(RESULTS, (
            f'\n## segmentation.py ({args.mode}): {args.encoder} vs {args.baseline} on CamVid / CamVid-C — '
            f'{datetime.date.today().isoformat()}\n\n'
            f'- command: `python benchmarks/segmentation.py {" ".join(argv)}`\n'
            f'- machine: {machine(args.device)}; whole run {(time.perf_counter() - start) / 60:.1f} min\n'
            f'- versions: python {platform.python_version()}, torch {torch.__version__}, timm {timm.__version__}, '
            f'smp {__import__("segmentation_models_pytorch").__version__}, fan_stl {fan_stl.__version__}\n'
            f'- settings: {settings}; mIoU in %, void ignored, one confusion matrix over the split; ratio = mean '
            f'corrupted / clean mIoU\n'
            f'- what it can and cannot show: {LIMITS}\n\n{table}\n'))
        print(f'recorded in {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
