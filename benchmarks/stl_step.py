"""Step time of an STL stage-2 step, and of each mixing method, vs a plain cross-entropy step of the same student.

STL step: the task `build_task` makes for stage stl on a paired batch (frozen teacher token labels on the teacher view,
no grad, same autocast) + student forward with token logits + TokenLabelLoss + backward + AdamW step. Plain step:
student class logits + cross-entropy + backward + AdamW step. Each `--methods` entry `METHOD[+RELABEL]` (a
`MIX_METHODS` name, optionally `+pal` / `+transmix`) is an STL step that also runs its mixer
(`build_data(config).mixer`, the no-prefetcher slot) and, for mixtoken / PAL / TransMix, its in-task work. `--maps` adds
the step with stored label maps (`--label-source maps`: crop records in, RoI-aligned top-k maps out, no teacher
forward; maps made by `fan_stl label` with the same teacher over `--maps-images` synthetic images, whose labelling
throughput in images/s is reported too, with the storage per image). Each `--robust` entry is an STL step with a
student-only batch augmentation (a `BATCH_AUGMENTS` name) or, `jsdK`, K views per image with the JS consistency on
class and token predictions (K x the images per step). Prints a table; `--record` appends it, with the command,
machine, versions and load (`uptime`: the machine may be shared), to benchmarks/RESULTS.md.

    python benchmarks/stl_step.py --model fan_t_hybrid_stl --batch-size 8 --img-size 128 --iters 10 \
        --methods mixup_cutmix maskmix mixpro mixtoken mixup_cutmix+transmix maskmix+pal --maps --record
    python benchmarks/stl_step.py --robust randconv pixmix prime soft_aug jsd3 --record
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

import timm

import fan_stl  # noqa: F401  (registers the models)
from fan_stl.models.fan import TOKEN_STRIDE
from fan_stl.stl.config import STLConfig
from fan_stl.stl.crop_record import CROP_COLUMNS, MARK
from fan_stl.stl.data import build_data
from fan_stl.stl.maskmix import mixpro_grid_cell
from fan_stl.stl.task import build_task
from fan_stl.stl.views import pair_views
from fan_stl.training.labeling import LabelConfig, label_dataset
from fan_stl.utils.amp import amp_dtype
from fan_stl.utils.atomic import append_text_atomic
from fan_stl.utils.machine import machine_description, versions_line

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


def _maps_task(args, teacher, teacher_name, student, device, autocast, folder):
    """ The maps-source task over maps `fan_stl label` writes for `args.maps_images` synthetic images with
    `teacher`; also the labelling throughput (images/s, reading, teacher, top-k and writing; the teacher's loading
    excluded) and the stored bytes per image. """
    from PIL import Image
    data = Path(folder) / 'data' / 'train'
    for i in range(args.maps_images):
        (data / f'class{i % 2}').mkdir(parents=True, exist_ok=True)
        pixels = torch.randint(0, 256, (args.img_size, args.img_size, 3), dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(data / f'class{i % 2}' / f'{i}.png')
    checkpoint = Path(folder) / 'teacher.pth'
    torch.save({'state_dict': teacher.state_dict()}, checkpoint)
    config = LabelConfig(str(data.parent), str(checkpoint), str(Path(folder) / 'maps'), teacher_model=teacher_name,
                         num_classes=args.num_classes, img_size=args.img_size, batch_size=args.batch_size,
                         workers=0, device=str(device), progress=False)
    result = label_dataset(config)
    index, rate = result.index, result.images_per_second
    per_image = sum(shard['bytes'] for shard in index['shards']) / args.maps_images
    maps_config = STLConfig(stage='stl', label_source='maps', label_maps=config.out)
    return build_task(maps_config, student, device=device, autocast=autocast), rate, per_image


def _crop_targets(labels: torch.Tensor, images: int, size: int) -> torch.Tensor:
    """ `[label, MARK, row, crop record]` targets with random crops of rows of the maps (what the loader yields). """
    batch = labels.shape[0]
    side = torch.randint(size // 4, size + 1, (batch,))
    top, left = (torch.rand(batch) * (size - side + 1)).long(), (torch.rand(batch) * (size - side + 1)).long()
    crops = torch.stack([torch.randint(0, images, (batch,)), top, left, side, side, torch.full((batch,), size),
                         torch.full((batch,), size), torch.randint(0, 2, (batch,))], 1)
    return torch.cat([labels.cpu()[:, None], torch.full((batch, 1), MARK), crops], 1).to(labels.device)


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
    parser.add_argument('--methods', nargs='*', default=[], metavar='METHOD[+RELABEL]',
                        help='mixing methods to time, e.g. maskmix mixtoken maskmix+pal mixup_cutmix+transmix')
    parser.add_argument('--robust', nargs='*', default=[], metavar='BATCH_AUGMENT|jsdK',
                        help='robust-training steps to time, e.g. randconv pixmix prime soft_aug jsd3')
    parser.add_argument('--styleaug-weights', metavar='FILE',
                        help='--robust styleaug: a converted StyleAug weights file (its cost is the architecture\'s: '
                             'a file of the same architecture with other weights times the same)')
    parser.add_argument('--maps', action='store_true', help='also time the step with stored label maps and the '
                                                            'labelling throughput')
    parser.add_argument('--maps-images', type=int, default=64, help='images labelled for --maps')
    parser.add_argument('--record', action='store_true', help='append the table to benchmarks/RESULTS.md')
    args = parser.parse_args()

    device = torch.device(args.device)
    autocast = (lambda: torch.autocast(device.type, dtype=amp_dtype(args.amp_dtype))) if args.amp_dtype \
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

    def stl_step(step_task=task, mixer=None):
        student.set_token_label_training(True)
        input, target = (paired, y) if mixer is None else mixer(paired, y)
        with autocast():
            optimize(step_task(input, target)['loss'])

    steps = {'plain': plain_step, 'stl': stl_step}
    for entry in args.methods:
        method, _, relabel = entry.partition('+')
        config = STLConfig(stage='stl', teacher=teacher, mix_method=method, attention_relabel=relabel or 'none',
                           maskmix_cell=mixpro_grid_cell(args.img_size))  # MixPro's 4 x 4 grid at any size
        mixer = build_data(config).mixer(mixup_alpha=0.8, cutmix_alpha=1., label_smoothing=0.1,
                                         num_classes=args.num_classes)
        method_task = build_task(config, student, device=device, autocast=autocast)
        steps[entry] = lambda t=method_task, m=mixer: stl_step(t, m)
    labelling = ''
    if args.maps:
        folder = tempfile.TemporaryDirectory()
        maps_task, rate, per_image = _maps_task(args, teacher, teacher_name, student, device, autocast, folder.name)
        maps_target = _crop_targets(y, args.maps_images, args.img_size)
        labelling = (f'- labelling throughput (`fan_stl label`, {args.maps_images} images of {args.img_size} px, '
                     f'batch {args.batch_size}, top-5, teacher {teacher_name}): {rate:.1f} images/s; storage '
                     f'{per_image:.0f} bytes per image (shards / images)\n')
        print(labelling.strip())

        def maps_step():
            student.set_token_label_training(True)
            with autocast():
                optimize(maps_task(x, maps_target)['loss'])
        steps['maps'] = maps_step
        crops = maps_target[:, -len(CROP_COLUMNS):]
        grid = (args.img_size // TOKEN_STRIDE, args.img_size // TOKEN_STRIDE)
        steps['maps_labels'] = lambda: maps_task.labeler(crops, grid)  # the maps' share of that step
    for entry in args.robust:  # robust training: a batch augmentation, or jsdK (K views, JS consistency)
        views = int(entry[3:]) if entry.startswith('jsd') else 0
        config = STLConfig(stage='stl', teacher=teacher, **(
            dict(aug_splits=views, jsd_loss=True, jsd_tokens=True) if views else dict(batch_augment=entry)),
            **({'styleaug_weights': args.styleaug_weights} if args.styleaug_weights else {}))
        robust_task = build_task(config, student, device=device, autocast=autocast)
        batch = (x.repeat(views, 1, 1, 1), y.repeat(views)) if views else (paired, y)
        steps[entry] = lambda t=robust_task, b=batch: stl_step(t, lambda *_: b)
    times = time_interleaved(steps, args.iters, args.warmup, device)
    ms = {name: 1e3 * statistics.median(times[name]) for name in steps}
    names = {'plain': 'plain CE step', 'stl': 'STL stage-2 step', 'maps': 'STL step from label maps',
             'maps_labels': 'its token targets from the maps alone (read, RoI-align, sample)'}
    table = ['| step | median ms | / plain | / STL step |', '|---|---|---|---|'] + [
        f'| {names.get(name, "STL + " + name)} | {value:.1f} | {value / ms["plain"]:.2f}x | {value / ms["stl"]:.2f}x |'
        for name, value in ms.items()]
    print('\n'.join(table))
    if not args.record:
        return 0
    load = os.popen('uptime').read().strip()
    where = 'GPU' if device.type == 'cuda' else 'CPU only (no GPU available to this run)'
    append_text_atomic(
        RESULTS,
        f'\n## stl_step: {args.model} (teacher {teacher_name}), batch {args.batch_size}, {args.img_size} px, '
        f'{args.num_classes} classes, amp {args.amp_dtype or "off"}\n\n'
        f'- command: `python {" ".join(sys.argv)}`\n'
        f'- machine: {machine_description(device)}; {versions_line(torch, timm, fan_stl)}\n'
        f'- {args.iters} timed steps each after {args.warmup} warm-up rounds, run alternately; medians; {where}\n'
        f'- load at the end (`uptime`, shared machine): {load}\n' + labelling + '\n'
        + '\n'.join(table) + '\n')
    print(f'appended to {RESULTS}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
