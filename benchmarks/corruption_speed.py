"""Images per second of every corruption: imagecorruptions (the reference) and fan_stl's torch corruptions on the
CPU (and on CUDA when present), on the same images, in one run.

    python benchmarks/corruption_speed.py --images 64 --reference-images 16 --record

Images: Imagenette-128 validation photographs (`--data`, default ../shared/data/imagenette-128/val) upsampled to
`--size` (224) px, as uint8. Each corruption is timed at every severity in `--severities` (default 1-5): the
reference one image at a time (its only mode) in this process, torch in batches of `--batch-size` (plus one untimed
warm-up batch per device and corruption); `--repeats` passes, and the median pass is reported. torch and
OpenCV (inside the reference) use `--threads` threads (default 1: on a loaded machine a second OpenMP thread makes
small torch operations up to 100x slower while it waits for a core); the reference runs in one process, as
`corrupt --workers 1` does, so the table also gives the speed-up against an ideal two-process reference. The
aggregate over the 15 standard (and all 19) corruptions is the total time per image of the set: sum(s/img). The
load average of the machine is printed (it is shared: the numbers are only as steady as it is); `--record` appends
the table, command, machine and versions to benchmarks/RESULTS.md.
"""
import argparse
import datetime
import os
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fan_stl.robustness.corruption_agreement import load_images, reference_images  # noqa: E402
from fan_stl.robustness.names import ALL_CORRUPTIONS, STANDARD_CORRUPTIONS  # noqa: E402
from fan_stl.robustness.torch_corruptions import corrupt_batch  # noqa: E402
from fan_stl.utils.atomic import append_text_atomic  # noqa: E402
from fan_stl.utils.machine import machine_description  # noqa: E402
from throughput import RESULTS  # noqa: E402

DEFAULT_DATA = REPO.parent / 'shared' / 'data' / 'imagenette-128' / 'val'
PACKAGES = ('torch', 'torchvision', 'imagecorruptions-imaug', 'numpy', 'opencv-python', 'scikit-image', 'numba')


def median_seconds(run: Callable[[], None], repeats: int, sync: Callable[[], None] = lambda: None) -> float:
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        run()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_reference(images: np.ndarray, corruption: str, severities: List[int], repeats: int) -> float:
    """ Seconds per image of imagecorruptions (numba / first-call costs paid by one untimed call). """
    reference_images(images[:1], corruption, severities[0])
    seconds = median_seconds(lambda: [reference_images(images, corruption, s) for s in severities], repeats)
    return seconds / (len(images) * len(severities))


def time_torch(images: np.ndarray, corruption: str, severities: List[int], repeats: int, device: str,
               batch_size: int) -> float:
    """ Seconds per image of the torch corruptions on `device`, from uint8 host images to uint8 results on the host
    (transfers included on CUDA). """
    from fan_stl.robustness.torch_corruptions import to_uint8
    host = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)

    def run() -> None:
        for severity in severities:
            for start in range(0, len(host), batch_size):
                batch = host[start:start + batch_size].to(device)
                to_uint8(corrupt_batch(batch, corruption, severity, keys=range(start, start + len(batch)))).cpu()

    corrupt_batch(host[:batch_size].to(device), corruption, severities[0])  # warm-up: caches, kernels, cuFFT plans
    sync()
    return median_seconds(run, repeats, sync) / (len(host) * len(severities))


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f'{name} {metadata.version(name)}')
        except metadata.PackageNotFoundError:
            continue
    return ', '.join(found)


def format_table(rows: Dict[str, Dict[str, float]], devices: List[str]) -> str:
    header = ['corruption', 'reference img/s'] + [f'torch {d} img/s' for d in devices] + \
        [f'{d} speed-up (vs 2-process ref)' for d in devices]
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]

    def line(name: str, seconds: Dict[str, float]) -> str:
        ref = seconds['reference']
        cells = [name, f'{1 / ref:.1f}'] + [f'{1 / seconds[d]:.1f}' for d in devices] + \
            [f'{ref / seconds[d]:.1f}x ({ref / seconds[d] / 2:.1f}x)' for d in devices]
        return '| ' + ' | '.join(cells) + ' |'

    for name, seconds in rows.items():
        lines.append(line(name, seconds))
    for label, names in (('**aggregate, 15 standard**', STANDARD_CORRUPTIONS), ('**aggregate, all 19**',
                                                                                ALL_CORRUPTIONS)):
        if all(n in rows for n in names):
            lines.append(line(label, {k: sum(rows[n][k] for n in names) for k in ['reference'] + devices}))
    return '\n'.join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data', type=Path, default=DEFAULT_DATA, help='folder of images (any tree)')
    parser.add_argument('--images', type=int, default=64, help='images for torch (default 64)')
    parser.add_argument('--reference-images', type=int, default=16, help='of those, for the reference (default 16)')
    parser.add_argument('--size', type=int, default=224, help='square size the images are resized to (default 224)')
    parser.add_argument('--corruptions', nargs='+', default=list(ALL_CORRUPTIONS), choices=list(ALL_CORRUPTIONS))
    parser.add_argument('--severities', nargs='+', type=int, default=[1, 2, 3, 4, 5], choices=[1, 2, 3, 4, 5])
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--threads', type=int, default=1, help='torch and OpenCV CPU threads (default 1)')
    parser.add_argument('--repeats', type=int, default=3, help='timed passes; the median is reported (default 3)')
    parser.add_argument('--no-cuda', action='store_true', help='skip the CUDA row even if a GPU is present')
    parser.add_argument('--record', action='store_true', help='append the table to benchmarks/RESULTS.md')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.data.is_dir():
        print(f'error: no images at {args.data}; pass --data FOLDER', file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    import cv2  # the reference's filters and resizes
    cv2.setNumThreads(args.threads)
    devices = ['cpu'] + (['cuda'] if torch.cuda.is_available() and not args.no_cuda else [])
    images = load_images(args.data, args.images, args.size)
    load_before = os.getloadavg()
    rows: Dict[str, Dict[str, float]] = {}
    for corruption in args.corruptions:
        rows[corruption] = {'reference': time_reference(images[:args.reference_images], corruption, args.severities,
                                                        args.repeats)}
        for device in devices:
            rows[corruption][device] = time_torch(images, corruption, args.severities, args.repeats, device,
                                                  args.batch_size)
        print(corruption, {k: f'{1 / v:.1f} img/s' for k, v in rows[corruption].items()}, flush=True)
    load_after = os.getloadavg()
    table = format_table(rows, devices)
    machine = '; '.join(machine_description(torch.device(d)) for d in devices)
    command = ' '.join(argv if argv is not None else sys.argv[1:])
    facts = (f'- command: `python benchmarks/corruption_speed.py {command}`\n'
             f'- machine: {machine}; load average (1/5/15 min) {"/".join(f"{v:.1f}" for v in load_before)} before, '
             f'{"/".join(f"{v:.1f}" for v in load_after)} after (a shared machine: 2 cores for several jobs)\n'
             f'- images: {args.images} (reference: the first {args.reference_images}) Imagenette-128 validation '
             f'photographs resized to {args.size} px; severities {args.severities}; torch batch {args.batch_size}, '
             f'{args.threads} threads; median of {args.repeats} passes\n'
             f'- versions: {versions()}\n')
    print(table)
    if args.record:
        date = datetime.date.today().isoformat()
        append_text_atomic(RESULTS, f'\n## corruption_speed.py — {date}\n\n{facts}\n{table}\n')
        print(f'recorded in {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
