"""benchmarks/gpu_check.py: the whole script in --smoke mode on the CPU (so the GPU run cannot fail on a typo), the
real run's commands against the scripts' parsers, its summary against the issue's targets, the RESULTS.md entry."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / 'benchmarks'
sys.path.insert(0, str(BENCHMARKS))

import gpu_check  # noqa: E402

from tests.conftest import checkout_env  # noqa: E402

def test_smoke_runs_every_step(tmp_path):
    out = tmp_path / 'out'
    env = {k: v for k, v in checkout_env().items() if k != 'OUT'}  # the script imports this checkout's fan_stl
    proc = subprocess.run([sys.executable, str(BENCHMARKS / 'gpu_check.py'), '--smoke', '--out', str(out)],
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / 'gpu_check.json').read_text())
    steps = {s['name']: s for s in report['steps']}
    assert set(steps) == set(gpu_check.BOXES)
    for name in ('throughput', 'stl_step', 'reproduce'):
        assert steps[name]['status'] == 'ok', (name, steps[name])
        assert steps[name]['wall_s'] > 0
    rows = steps['throughput']['numbers']['rows']
    assert {(r['mode'], r['note']) for r in rows} == {('eager', ''), ('compiled', '')}
    assert all(r['infer_img_s'] > 0 and r['train_img_s'] > 0 for r in rows)
    assert steps['stl_step']['numbers']['ratio'] > 0
    assert {r['arm'] for r in steps['reproduce']['numbers']['results']} == {'baseline', 'tl', 'stl'}
    if os.environ.get('FAN_STL_TIMM_TRAIN'):
        assert steps['train_launcher']['numbers'] == {'tl': True, 'stl': True}
    else:
        assert steps['train_launcher']['status'].startswith('skipped: no train.py')
    summary = (out / 'summary.md').read_text()
    assert 'Against the project\'s GPU targets' in summary and '| reproduce_small stl' in summary
    assert sorted(p.name for p in out.iterdir()) == ['gpu_check.json', 'logs.txt', 'reproduce_small.png',
                                                      'summary.md']


def _step(name, **numbers):
    return gpu_check.Step(name, 1., status='ok', numbers=numbers)


def _row(mode, source='fan_stl / timm', **values):
    return dict(model=gpu_check.TARGET_MODEL, mode=mode, source=source, **values)


def test_summary_checks_speed_and_memory_targets():
    rows = [_row('eager', infer_img_s=4100., train_img_s=1400., train_peak_gib=13.5),
            _row('compiled', infer_img_s=9000., train_img_s=2700., train_peak_gib=10.),
            _row('eager', 'official NVlabs/STL', infer_img_s=2700., train_img_s=900., train_peak_gib=19.)]
    steps = {'throughput': _step('throughput', rows=rows), 'stl_step': _step('stl_step', ratio=1.3),
             'reproduce': _step('reproduce'), 'train_launcher': gpu_check.Step('train_launcher', 1., skipped='x')}
    lines = gpu_check.summary_table(steps, smoke=False).splitlines()
    met = {line.split('|')[1].strip(): line.split('|')[-2].strip() for line in lines[2:]}
    assert met[f'{gpu_check.TARGET_MODEL} infer eager img/s (bs 256)'] == 'yes'
    assert met[f'{gpu_check.TARGET_MODEL} infer compiled img/s (bs 256)'] == 'no'
    assert met[f'{gpu_check.TARGET_MODEL} train eager img/s (bs 128)'] == 'no'  # fast enough, over 13 GiB
    assert met[f'{gpu_check.TARGET_MODEL} train compiled img/s (bs 128)'] == 'yes'
    assert met['STL stage-2 step / plain step'] == 'no'
    assert '2,700' in lines[2] and '1,400 @ 13.5 GiB' in lines[4]
    assert set(gpu_check.summary_table(steps, smoke=True).split('| met |')[1].split('|')) >= {' - '}


def test_record_from_appends_entry_and_chart(tmp_path):
    run = tmp_path / 'run'
    run.mkdir()
    (run / 'summary.md').write_text('\n## gpu_check.py — test\n')
    (run / 'reproduce_small.png').write_bytes(b'png')
    results = tmp_path / 'RESULTS.md'
    results.write_text('# Benchmark results\n')
    gpu_check.record_from(run, results)
    text = results.read_text()
    assert text.startswith('# Benchmark results\n\n## gpu_check.py — test')
    assert '(results/reproduce_small_gpu-fast.png)' in text
    assert (tmp_path / 'results' / 'reproduce_small_gpu-fast.png').read_bytes() == b'png'


def test_box_option_names_the_steps():
    with pytest.raises(SystemExit):
        gpu_check.main(['--out', 'x', '--box', 'nosuchstep=10'])


def test_gpu_plan_commands_parse(tmp_path):
    """ The commands of the real (non-smoke) run are accepted by the scripts' own parsers, here on the CPU. """
    import reproduce_small
    import throughput
    from fan_stl.training.train_launcher import build_parser as launcher_parser
    data = gpu_check._subset(_fake_imagefolder(tmp_path / 'src'), tmp_path / 'data', 2, 2, 1)
    args = gpu_check.build_parser().parse_args(
        ['--out', str(tmp_path / 'out'), '--timm-train', 'train.py', '--official-dir', str(tmp_path)])
    args.box = dict(args.box)
    steps = {s.name: s for s in gpu_check.plan(args, tmp_path / 'work', data)}
    assert [s.box_s for s in steps.values()] == list(gpu_check.BOXES.values())
    assert sum(gpu_check.BOXES.values()) <= 9 * 60 - 15
    parsed = throughput.build_parser().parse_args(steps['throughput'].commands[0][2:])
    assert parsed.models == gpu_check.THROUGHPUT_MODELS and parsed.official_dir == tmp_path
    assert parsed.device == 'cpu' or parsed.device == 'cuda'
    parsed = reproduce_small.build_parser().parse_args(steps['reproduce'].commands[0][2:])
    assert parsed.mode == 'gpu-fast' and parsed.data == data
    for command in steps['train_launcher'].commands:
        split = command.index('--')
        assert command[command.index('torch.distributed.run') + 1:][:3] == ['--standalone', '--nproc_per_node', '1']
        launcher_parser().parse_args(command[command.index('fan_stl.train') + 1:split])
        assert {'--amp', '--channels-last'} <= set(command[split:]) and '--no-prefetcher' not in command


def _fake_imagefolder(root):
    for split in ('train', 'val'):
        for name in ('a', 'b'):
            (root / split / name).mkdir(parents=True)
            for i in range(2):
                (root / split / name / f'{i}.png').write_bytes(b'')
    return root
