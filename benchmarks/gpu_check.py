"""The project's GPU evidence in one call: speed against the official code, the small STL reproduction and the
CUDA path of the train.py launcher, each step time-boxed, every output in one folder.

Steps (each a subprocess with its own time box; one failing or running over never loses the others' results):
    train_launcher  `python -m fan_stl.train` with timm's stock train.py under `torchrun --nproc_per_node 1`: a few
                    steps of stage tl, then of stage stl taught by that checkpoint (prefetcher, channels-last, --amp)
    throughput      benchmarks/throughput.py: fan_small_12_p4_hybrid, fan_s_hybrid_stl, fan_large_16_p4_hybrid,
                    convnext_tiny, xcit_small_12_p16_224; inference batch 256 and training batch 128 (AdamW), bf16
                    autocast, eager (medians of interleaved rounds) and torch.compile, img/s and peak memory; with
                    --official-dir also the official NVlabs/STL fan_small_12_p4_hybrid with the same weights
    stl_step        benchmarks/stl_step.py (without --record, so it appends nowhere): the STL stage-2
                    step of fan_s_hybrid_stl against a plain step, batch 128, bf16 (target <= 1.25x)
    reproduce       benchmarks/reproduce_small.py --gpu-fast on Imagenette-128: baseline, token labeler and STL
                    student, 2 seeds, bf16, the official recipe with the lr scaled linearly to the batch
The end prints a summary against the project's GPU speed and memory targets (`TARGETS`; the official anchors are the
official NVlabs code measured on one H100, bf16) and writes into the output folder (at most 8 files, none deeper than
the folder itself):
    gpu_check.json       every number, each step's status and wall time, GPU, driver and versions
    summary.md           the RESULTS.md entry: the summary, the throughput table, the reproduction tables
    logs.txt             every step's command and full output
    reproduce_small.png  the reproduction's corruption-error chart (when that step finished)
`--record` appends summary.md to benchmarks/RESULTS.md; `--record-from DIR` does so for a folder that came back from
a GPU machine. `--smoke` runs everything on the CPU with tiny models, batches and data in about half a minute of
CPU time (the default test suite does, so the GPU run cannot fail on a typo); its train.py step runs when
FAN_STL_TIMM_TRAIN or --timm-train names timm's train.py and is skipped with a line in the summary otherwise.

How the next holder of a GPU runs it with the project's device tool (`run`; one call, about 9 minutes):
 1. In the root of the checkout that the device tool sends (the session's own repository), prepare the carry folder
    in the git-ignored .data/ (about 40 MiB of the 64 MiB a call may carry):
        python benchmarks/gpu_check.py --prepare .data/gpu \
            --data path/to/imagenette-128 --timm-train path/to/timm/train.py \
            --official-dir <checkout of github.com/NVlabs/STL, e.g. from the fetch tool; never committed>
    It copies the images, train.py and the official models/ folder, and downloads the timm and
    imagecorruptions-imaug wheels (pip download) that the GPU machine lacks.
 2. Call `run` with carry [".data/gpu"], timeout_s 600, and the command (one line)
        python3 -m pip install -q --no-index --no-deps --target /tmp/site .data/gpu/whl/*.whl &&
        PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --carry .data/gpu --out $OUT
 3. Here: `python benchmarks/gpu_check.py --record-from <files_at>` appends the entry (and the chart) to
    benchmarks/RESULTS.md; commit it.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any, Dict, List, Optional

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RESULTS = BENCHMARKS / 'RESULTS.md'
sys.path[:0] = [str(REPO), str(BENCHMARKS)]  # fan_stl from this checkout; the sibling benchmark scripts
THROUGHPUT_MODELS = ['fan_small_12_p4_hybrid', 'fan_s_hybrid_stl', 'fan_large_16_p4_hybrid', 'convnext_tiny',
                     'xcit_small_12_p16_224']
TARGET_MODEL = 'fan_small_12_p4_hybrid'
# time boxes in seconds (sum 525 s: the whole call stays under 9 minutes on one H100/H200)
BOXES = {'train_launcher': 70, 'throughput': 170, 'stl_step': 35, 'reproduce': 250}
SMOKE_BOXES = {'train_launcher': 150, 'throughput': 150, 'stl_step': 100, 'reproduce': 300}
# the project's GPU targets for FAN-S-Hybrid (224 px, bf16):
# (metric, mode, official H100 anchor, target, memory anchor, memory cap)
TARGETS = [
    ('infer', 'eager', 2689, 4000, None, None),
    ('infer', 'compiled', 7333, 9500, None, None),
    ('train', 'eager', 886, 1300, 19.3, 13.0),
    ('train', 'compiled', 1994, 2600, 14.9, 11.0),
]
STL_STEP_TARGET = 1.25
CARRY_LAYOUT = {'data': 'imagenette-128', 'train': 'timm/train.py', 'official': 'official', 'wheels': 'whl'}


@dataclass
class Step:
    """ One time-boxed step: its commands (run in order, each sharing the box) or the reason it was skipped. """
    name: str
    box_s: float
    commands: List[List[str]] = field(default_factory=list)
    skipped: str = ''
    status: str = 'not run'
    wall_s: float = 0.
    returncodes: List[int] = field(default_factory=list)
    numbers: Dict[str, Any] = field(default_factory=dict)


def _python() -> List[str]:
    return [sys.executable]


def _subset(src: Path, dst: Path, classes: int, train_per_class: int, val_per_class: int) -> Path:
    """ A small ImageFolder of symlinks to the first images of the first classes of `src`. """
    for split, count in (('train', train_per_class), ('val', val_per_class)):
        for class_dir in sorted(p for p in (src / split).iterdir() if p.is_dir())[:classes]:
            (dst / split / class_dir.name).mkdir(parents=True, exist_ok=True)
            for image in sorted(class_dir.iterdir())[:count]:
                link = dst / split / class_dir.name / image.name
                if not link.exists():
                    link.symlink_to(image.resolve())
    return dst


def find_data(args: argparse.Namespace, work: Path) -> Optional[Path]:
    """ The Imagenette folder: --data, the carry folder, reproduce_small's defaults; synthetic images in --smoke. """
    if args.data:
        return args.data
    candidates = [args.carry / CARRY_LAYOUT['data']] if args.carry else []
    from reproduce_small import DATA_CANDIDATES
    found = next((p for p in candidates + list(DATA_CANDIDATES) if (p / 'train').is_dir()), None)
    if found is None and args.smoke:
        from fan_stl.demo.synthetic import make_shapes_dataset
        found = make_shapes_dataset(work / 'synthetic', train_per_class=2, val_per_class=1, size=32)
    return found


def plan(args: argparse.Namespace, work: Path, data: Optional[Path]) -> List[Step]:
    boxes = dict(SMOKE_BOXES if args.smoke else BOXES, **args.box)
    steps = [Step(name, boxes[name]) for name in BOXES]
    launcher, throughput, stl_step, reproduce = steps
    cpu = ['--device', 'cpu'] if args.smoke else []

    # 1. train.py launcher under torchrun (tl, then stl taught by the tl checkpoint)
    timm_train = args.timm_train or os.environ.get('FAN_STL_TIMM_TRAIN')
    if not timm_train:
        launcher.skipped = 'no train.py: pass --timm-train or set FAN_STL_TIMM_TRAIN (timm\'s train.py is not in pip)'
    elif data is None:
        launcher.skipped = 'no image folder (see --data)'
    else:
        small = _subset(data, work / 'launcher_data', classes=3 if args.smoke else 10,
                        train_per_class=4 if args.smoke else 32, val_per_class=1 if args.smoke else 8)
        common = ['--data-dir', str(small), '--img-size', '32' if args.smoke else '128', '-b',
                  '4' if args.smoke else '64', '--epochs', '1', '--workers', '0' if args.smoke else '4',
                  '--output', str(work / 'launcher'), '--amp', '--amp-dtype', 'bfloat16', '--channels-last',
                  '--mixup', '0.8', '--cutmix', '1.0', '--aa', 'rand-m9-mstd0.5-inc1-mmax9', '--reprob', '0.3',
                  '--model-ema', '--model-ema-decay', '0.9', '--log-interval', '1', *cpu]
        torchrun = _python() + ['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '1',
                                '-m', 'fan_stl.train', '--timm-train', str(timm_train)]
        teacher = work / 'launcher' / 'tl' / 'model_best.pth.tar'
        launcher.commands = [
            torchrun + ['--stage', 'tl', '--', *common, '--model', 'fan_t_hybrid_tl', '--experiment', 'tl'],
            torchrun + ['--stage', 'stl', '--teacher', str(teacher), '--teacher-model', 'fan_t_hybrid_tl', '--',
                        *common, '--model', 'fan_t_hybrid_stl', '--experiment', 'stl'],
        ]

    # 2. throughput (and the official code side by side)
    command = _python() + [str(BENCHMARKS / 'throughput.py'), '--json', str(work / 'throughput.json'),
                           '--time-budget', str(max(throughput.box_s - 20, 1))]
    if args.smoke:
        command += ['--device', 'cpu', '--img-size', '32', '--infer-batch', '2', '--train-batch', '2', '--iters', '1',
                    '--warmup', '0', '--compile', '--compile-backend', 'eager', '--compile-reserve', '5']
        command += (['--models', 'fan_tiny_8_p4_hybrid', '--official-models', 'fan_tiny_8_p4_hybrid']
                    if args.official_dir else
                    ['--models', 'fan_t_hybrid_stl', '--model-kwargs', 'depth=1', 'stem_depths=(1,1)'])
        command += ['--profile', command[command.index('--models') + 1]]
    else:
        command += ['--models', *THROUGHPUT_MODELS, '--official-models', TARGET_MODEL, '--profile', TARGET_MODEL]
    if args.official_dir:
        command += ['--official-dir', str(args.official_dir)]
    throughput.commands = [command]

    # 3. STL stage-2 step vs a plain step (without --record: it appends nothing to RESULTS.md)
    stl_step.commands = [_python() + [str(BENCHMARKS / 'stl_step.py')] + (
        ['--model', 'fan_t_hybrid_stl', '--batch-size', '2', '--img-size', '32', '--iters', '1', '--warmup', '0',
         '--num-classes', '10', '--device', 'cpu'] if args.smoke else
        ['--model', 'fan_s_hybrid_stl', '--batch-size', '128', '--img-size', '224', '--iters', '10',
         '--amp-dtype', 'bfloat16'])]

    # 4. the small reproduction
    if data is None:
        reproduce.skipped = 'no Imagenette folder: pass --data or --carry (see reproduce_small.py for the download)'
    else:
        reproduce.commands = [_python() + [
            str(BENCHMARKS / 'reproduce_small.py'), '--smoke' if args.smoke else '--gpu-fast', '--data', str(data),
            '--out', str(work / 'reproduce'), '--json', str(work / 'reproduce.json'), '--quiet']]
    return steps


def _run_step(step: Step, log, env: Dict[str, str]) -> None:
    if step.skipped:
        step.status = f'skipped: {step.skipped}'
        log.write(f'\n===== {step.name}: {step.status}\n')
        return
    start = time.perf_counter()
    step.status = 'ok'
    for command in step.commands:
        left = step.box_s - (time.perf_counter() - start)
        log.write(f'\n===== {step.name} ({left:.0f} s left of {step.box_s:.0f}): {" ".join(command)}\n')
        log.flush()
        print(f'[gpu_check] {step.name}: {" ".join(command[1:3])} ...', flush=True)
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                                start_new_session=True)
        try:
            step.returncodes.append(proc.wait(timeout=max(left, 1)))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the step's own process group: torchrun and loader workers too
            proc.wait()
            step.returncodes.append(-9)
            step.status = f'timed out after {step.box_s:.0f} s'
            break
        if step.returncodes[-1] != 0:
            step.status = f'failed (exit {step.returncodes[-1]})'
            break
    step.wall_s = time.perf_counter() - start
    log.write(f'===== {step.name}: {step.status}, {step.wall_s:.1f} s\n')
    log.flush()
    print(f'[gpu_check] {step.name}: {step.status} in {step.wall_s:.0f} s', flush=True)


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def collect(steps: List[Step], work: Path, log_text: str) -> None:
    """ Each step's numbers from its JSON or output (partial results of a timed-out step included). """
    by_name = {s.name: s for s in steps}
    by_name['throughput'].numbers = _read_json(work / 'throughput.json')
    by_name['reproduce'].numbers = _read_json(work / 'reproduce.json')
    ratio = re.findall(r'\| STL stage-2 step \| [0-9.]+ \| ([0-9.]+)x \|', log_text)
    if ratio:
        by_name['stl_step'].numbers = {'ratio': float(ratio[-1])}
    launcher = by_name['train_launcher']
    if launcher.commands:
        launcher.numbers = {stage: (work / 'launcher' / stage / 'last.pth.tar').is_file() for stage in ('tl', 'stl')}


def _environment() -> Dict[str, str]:
    import torch
    import timm
    import fan_stl
    from fan_stl.utils.machine import machine_description, software_versions
    facts = {**software_versions(torch, timm, fan_stl), 'cuda': str(torch.version.cuda)}
    try:
        import triton
        facts['triton'] = triton.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():  # facts from nvidia-smi: no CUDA context in this process during the steps
        facts['cudnn'] = str(torch.backends.cudnn.version())
        try:
            smi = subprocess.run(['nvidia-smi', '--query-gpu=name,driver_version,memory.total,clocks.max.sm',
                                  '--format=csv,noheader'], capture_output=True, text=True, timeout=20)
            facts['gpu (name, driver, memory, max SM clock)'] = smi.stdout.strip() or smi.stderr.strip()
        except (OSError, subprocess.SubprocessError) as e:
            facts['gpu (name, driver, memory, max SM clock)'] = f'nvidia-smi failed: {e}'
    else:
        facts['gpu'] = f'none ({machine_description(torch.device("cpu"))}, {os.cpu_count()} cores)'
    return facts


def _find(rows: List[Dict[str, Any]], mode: str, official: bool) -> Optional[Dict[str, Any]]:
    return next((r for r in rows if r['model'] == TARGET_MODEL and r['mode'] == mode
                 and r['source'].startswith('official') == official), None)


def _fmt(value: Optional[float], spec: str = ',.0f') -> str:
    return '-' if value is None else format(value, spec)


def summary_table(steps: Dict[str, Step], smoke: bool) -> str:
    """ The issue's targets against this run's numbers (`met` left open in --smoke: CPU numbers test nothing). """
    rows = steps['throughput'].numbers.get('rows', [])
    lines = ['| check | this run (ours) | official, this run | official anchor (H100) | target | met |',
             '|---|---|---|---|---|---|']
    for metric, mode, anchor, target, mem_anchor, mem_cap in TARGETS:
        ours, theirs = _find(rows, mode, False), _find(rows, mode, True)
        value = ours and ours.get(f'{metric}_img_s')
        peak = ours and ours.get(f'{metric}_peak_gib')
        official = theirs and theirs.get(f'{metric}_img_s')
        cell = _fmt(value) + (f' @ {peak:.1f} GiB' if mem_cap and peak is not None else '')
        official_cell = _fmt(official) + (f' @ {theirs["train_peak_gib"]:.1f} GiB'
                                          if mem_cap and theirs and theirs.get('train_peak_gib') else '')
        goal = f'>= {target:,}' + (f' @ <= {mem_cap} GiB' if mem_cap else '')
        met = '-' if smoke or value is None else (
            'yes' if value >= target and (not mem_cap or (peak is not None and peak <= mem_cap)) else 'no')
        anchor_cell = f'{anchor:,}' + (f' @ {mem_anchor} GiB' if mem_anchor else '')
        lines.append(f'| {TARGET_MODEL} {metric} {mode} img/s (bs {256 if metric == "infer" else 128}) | {cell} | '
                     f'{official_cell} | {anchor_cell} | {goal} | {met} |')
    ratio = steps['stl_step'].numbers.get('ratio')
    lines.append(f'| STL stage-2 step / plain step | {_fmt(ratio, ".2f")} | - | - | <= {STL_STEP_TARGET} | '
                 f'{"-" if smoke or ratio is None else ("yes" if ratio <= STL_STEP_TARGET else "no")} |')
    results = steps['reproduce'].numbers.get('results', [])
    for arm in ('baseline', 'tl', 'stl'):
        rs = [r for r in results if r['arm'] == arm]
        if rs:
            lines.append(f'| reproduce_small {arm}: clean top-1 / mCE vs baseline (mean of {len(rs)} seeds) | '
                         f'{mean(r["clean_top1"] for r in rs):.2f} / {mean(r["mce_vs_baseline"] for r in rs):.1f} | '
                         f'- | - | stl beats baseline | - |')
    launcher = steps['train_launcher']
    lines.append(f'| fan_stl.train + train.py under torchrun (tl, stl) | {launcher.status}'
                 + (f'; checkpoints {launcher.numbers}' if launcher.numbers else '') + ' | - | - | both run | '
                 + ('-' if smoke or launcher.skipped else ('yes' if launcher.status == 'ok' else 'no')) + ' |')
    return '\n'.join(lines)


def report_text(args: argparse.Namespace, steps: List[Step], facts: Dict[str, str], total_s: float) -> str:
    by_name = {s.name: s for s in steps}
    title = 'gpu_check.py --smoke (CPU dry run)' if args.smoke else 'gpu_check.py'
    parts = [f'\n## {title} — {datetime.date.today().isoformat()}\n',
             f'- command: `python benchmarks/{" ".join([Path(__file__).name] + sys.argv[1:])}`',
             '- ' + '; '.join(f'{k} {v}' for k, v in facts.items()),
             f'- total wall time {total_s:.0f} s; steps: ' + ', '.join(
                 f'{s.name} {s.status} ({s.wall_s:.0f} s of {s.box_s:.0f})' for s in steps),
             '\n### Against the project\'s GPU targets\n', summary_table(by_name, args.smoke)]
    throughput = by_name['throughput'].numbers
    if throughput.get('rows'):
        from throughput import format_table
        parts += [f'\n### Throughput ({throughput.get("img_size")} px, {throughput.get("amp")}, inference batch '
                  f'{throughput.get("infer_batch")}, training batch {throughput.get("train_batch")}, '
                  f'{throughput.get("rounds")} interleaved eager rounds x {throughput.get("iters")} steps)\n',
                  format_table(throughput['rows'])]
        parts += [f'\nSame weights in both implementations: max |logit difference| {d:.2e} ({name}, fp32, CPU)'
                  for name, d in throughput.get('agreement', {}).items()]
        parts += [f'\nWhere the time goes, {name} (torch profiler, top entries):\n\n```\n{table}\n```'
                  for name, table in throughput.get('profiles', {}).items()]
    reproduce = by_name['reproduce'].numbers
    if reproduce.get('tables'):
        parts += [f'\n### reproduce_small.py --{reproduce["mode"]} ({reproduce["seconds"]:.0f} s; recipe '
                  f'{reproduce["recipe"]}; {reproduce["eval_per_class"]} val images per class)\n',
                  reproduce['tables']]
    return '\n'.join(parts) + '\n'


def record_from(folder: Path, results: Path = RESULTS) -> None:
    """ Append a finished run's summary.md (and its chart) to RESULTS.md. """
    from fan_stl.utils.atomic import append_text_atomic
    entry = (folder / 'summary.md').read_text()
    chart = folder / 'reproduce_small.png'
    if chart.is_file():
        kept = results.parent / 'results' / 'reproduce_small_gpu-fast.png'
        kept.parent.mkdir(exist_ok=True)
        shutil.copyfile(chart, kept)
        entry += f'\nChart: [{kept.relative_to(results.parent)}]({kept.relative_to(results.parent)})\n'
    append_text_atomic(results, entry)
    print(f'appended {folder / "summary.md"} to {results}')


def prepare(target: Path, args: argparse.Namespace) -> None:
    """ Fill the carry folder for a GPU machine (see the module docstring). """
    missing = [flag for flag, value in (('--data', args.data), ('--timm-train', args.timm_train)) if not value]
    if missing:
        raise SystemExit(f'--prepare needs {" and ".join(missing)}')
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(args.data, target / CARRY_LAYOUT['data'], dirs_exist_ok=True)
    (target / CARRY_LAYOUT['train']).parent.mkdir(exist_ok=True)
    shutil.copyfile(args.timm_train, target / CARRY_LAYOUT['train'])
    if args.official_dir:
        shutil.copytree(Path(args.official_dir) / 'models', target / CARRY_LAYOUT['official'] / 'models',
                        dirs_exist_ok=True, ignore=shutil.ignore_patterns('__pycache__'))
    import timm
    subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-q', '-d',
                    str(target / CARRY_LAYOUT['wheels']), f'timm=={timm.__version__}', 'imagecorruptions-imaug'],
                   check=True)
    size = sum(p.stat().st_size for p in target.rglob('*') if p.is_file()) / 2 ** 20
    print(f'{target}: {size:.0f} MiB (a device call carries at most 64 MiB with the repository)')


def _box(item: str) -> tuple:
    name, _, seconds = item.partition('=')
    if name not in BOXES or not seconds:
        raise argparse.ArgumentTypeError(f'--box takes STEP=SECONDS with STEP one of {", ".join(BOXES)}')
    return name, float(seconds)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--out', type=Path, default=Path(os.environ['OUT']) if os.environ.get('OUT') else None,
                        help='output folder (default: $OUT when set)')
    parser.add_argument('--smoke', action='store_true', help='the whole script on the CPU with tiny sizes')
    parser.add_argument('--data', type=Path, help='Imagenette ImageFolder (default: the carry folder, then '
                        'reproduce_small.py\'s defaults; synthetic images in --smoke)')
    parser.add_argument('--timm-train', type=Path, help='timm\'s train.py (default: $FAN_STL_TIMM_TRAIN)')
    parser.add_argument('--official-dir', type=Path, help='checkout of github.com/NVlabs/STL (outside the repo)')
    parser.add_argument('--carry', type=Path, help='a folder made by --prepare: data, train.py, official code')
    parser.add_argument('--work', type=Path, help='scratch folder (default: a temporary folder, removed)')
    parser.add_argument('--box', type=_box, action='append', default=[], metavar='STEP=SECONDS',
                        help=f'change a step\'s time box (defaults {BOXES})')
    parser.add_argument('--record', action='store_true', help='append the summary to benchmarks/RESULTS.md')
    parser.add_argument('--record-from', type=Path, metavar='DIR', help='only append DIR/summary.md to RESULTS.md')
    parser.add_argument('--prepare', type=Path, metavar='DIR', help='only fill a carry folder for a GPU machine')
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.box = dict(args.box)
    if args.record_from:
        record_from(args.record_from)
        return 0
    if args.prepare:
        prepare(args.prepare, args)
        return 0
    if args.out is None:
        parser.error('give --out (or set $OUT)')
    if args.carry:
        args.timm_train = args.timm_train or args.carry / CARRY_LAYOUT['train']
        official = args.carry / CARRY_LAYOUT['official']
        args.official_dir = args.official_dir or (official if (official / 'models').is_dir() else None)
    from fan_stl.utils.atomic import write_text_atomic
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix='gpu_check_'))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data = find_data(args, work)
    steps = plan(args, work, data)
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([str(REPO)] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    if args.smoke:  # tiny tensors: extra threads only add overhead (less than half the CPU time on two cores)
        env.setdefault('OMP_NUM_THREADS', '1')
    log_path = work / 'logs.txt'
    facts = _environment()
    facts['data'] = str(data) if data else 'none'
    with log_path.open('w') as log:
        for step in steps:
            _run_step(step, log, env)
            collect(steps, work, log_path.read_text(errors='replace'))
            write_text_atomic(args.out / 'gpu_check.json', json.dumps(
                {'smoke': args.smoke, 'environment': facts, 'steps': [asdict(s) for s in steps]}, indent=1))
    total = time.perf_counter() - start
    entry = report_text(args, steps, facts, total)
    write_text_atomic(args.out / 'summary.md', entry)
    shutil.copyfile(log_path, args.out / 'logs.txt')
    mode = 'smoke' if args.smoke else 'gpu-fast'
    chart = work / 'reproduce' / mode / 'corruption_errors.png'
    if chart.is_file():
        shutil.copyfile(chart, args.out / 'reproduce_small.png')
    print(entry)
    if args.record:
        record_from(args.out)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(s.status == 'ok' or s.skipped for s in steps) else 1


if __name__ == '__main__':
    sys.exit(main())
