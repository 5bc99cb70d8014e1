"""The STL story pipeline (`fan_stl.demo.experiment`) at toy scale: arms, baseline-relative mCE, weights, resume."""
import contextlib
import io
import json
import os
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import timm
from fan_stl.demo.experiment import TOKEN_FIGURE, ExperimentConfig, format_comparison, run_experiment
from fan_stl.demo.synthetic import CLASSES
from fan_stl.utils.atomic import TEMP_GLOB

pytest.importorskip('imagecorruptions', reason='needs the robustness extra: pip install -e ".[robustness]"')

TOY_TRAIN = dict(img_size=32, batch_size=8, epochs=1, max_steps_per_epoch=2, lr=1e-3, drop_path=0., mixup=0.,
                 cutmix=0., aa=None, reprob=0., model_kwargs=dict(depth=1, stem_depths=(1, 1)), workers=0)


@pytest.fixture(scope='module')
def toy_run(tmp_path_factory):
    root = tmp_path_factory.mktemp('story')
    cfg = ExperimentConfig(data_dir=str(root / 'data'), out_dir=str(root / 'out'), train=TOY_TRAIN,
                           generate=dict(train_per_class=2, val_per_class=2, size=32),
                           corruptions=('gaussian_noise', 'contrast'), eval_per_class=1, workers=1, progress=False,
                           threads=1)
    return cfg, run_experiment(cfg)


def test_every_arm_is_trained_evaluated_and_compared_with_the_baseline(toy_run):
    cfg, results = toy_run
    assert [r.arm for r in results] == ['baseline', 'tl', 'stl']
    baseline = results[0]
    assert baseline.mce_vs_baseline == pytest.approx(100.)
    for r in results:
        assert set(r.corruption_errors) == {'gaussian_noise', 'contrast'}
        expected = 100 * sum(r.corruption_errors[c] / baseline.corruption_errors[c] for c in r.corruption_errors) / 2
        assert r.mce_vs_baseline == pytest.approx(expected)
    table = format_comparison(results)
    assert 'mCE vs baseline' in table and table.count('\n') == 4


def test_weights_are_timm_loadable_safetensors_of_the_reduced_model(toy_run):
    cfg, results = toy_run
    folder = f'{cfg.out_dir}/weights/stl-seed0'
    assert json.load(open(f'{folder}/config.json'))['architecture'] == 'fan_t_hybrid_stl'
    model = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    assert len(model.blocks) == 1 and model.num_classes == len(CLASSES)
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, len(CLASSES))


def test_the_weights_card_snippet_loads_the_folder_and_cites_the_methods(toy_run):
    """ the card said `create_model('hf-hub:stl-seed0')` (no such repo) and cited FAN alone. """
    cfg, results = toy_run
    folder = Path(cfg.out_dir) / 'weights' / 'stl-seed0'
    card = (folder / 'README.md').read_text()
    assert 'hf-hub:' not in card and f"local-dir:{folder.resolve()}" in card
    snippet = re.search(r'```python\n(.*?)```', card, flags=re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(snippet, 'README.md', 'exec'), {})  # the card's own code, as a reader would paste it
    name, probability = printed.getvalue().split()
    assert name in [f.name for f in (Path(cfg.data_dir) / 'train').iterdir()] and 0 < float(probability) <= 1
    for title in ('Understanding The Robustness in Vision Transformers', 'Self-emerging Token Labeling',
                  'All Tokens Matter: Token Labeling', 'A ConvNet for the 2020s'):
        assert title in card
    assert 'teacher arm `tl`' in card and f'from scratch, {len(results[2].history)} epochs at batch 8' in card
    baseline_card = (Path(cfg.out_dir) / 'weights' / 'baseline-seed0' / 'README.md').read_text()
    assert 'Understanding The Robustness' in baseline_card and 'Token Labeling' not in baseline_card


def test_weights_folder_files_have_the_usual_permissions(toy_run):
    """ model.safetensors (and history.json) were written owner-only, unlike the run's other files. """
    cfg, _ = toy_run
    umask = os.umask(0)
    os.umask(umask)
    folder = Path(cfg.out_dir) / 'weights' / 'tl-seed0'
    modes = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
    assert set(modes) == {'model.safetensors', 'config.json', 'README.md', 'history.json'}
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_token_head_arms_are_measured_against_the_generated_masks(toy_run):
    cfg, results = toy_run
    scores = {r.arm: r.token_labels for r in results}
    assert scores['baseline'] is None  # no token head
    for arm in ('tl', 'stl'):
        assert set(scores[arm]) == {'object', 'background'}
        assert all(0. <= v <= 100. for v in scores[arm].values())
    figure = Path(cfg.out_dir) / TOKEN_FIGURE
    assert figure.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    assert not list(Path(cfg.out_dir).rglob(TEMP_GLOB))


def test_rerun_reuses_trained_weights_and_evaluated_cells(toy_run):
    cfg, results = toy_run
    again = run_experiment(cfg)
    assert [(r.arm, r.train_seconds, r.clean_top1) for r in again] == \
        [(r.arm, r.train_seconds, r.clean_top1) for r in results]


def test_side_by_side_trains_the_token_labeler_in_a_second_process_to_the_same_numbers(toy_run, tmp_path,
                                                                                     monkeypatch):
    """ two cores train the baseline and the token labeler at once, one thread each; nothing else changes. """
    from fan_stl.demo import experiment
    cfg, results = toy_run
    train_beside = experiment._train_beside

    def note_the_process(cfg, arm, seed):
        (tmp_path / f'{arm}.pid').write_text(str(os.getpid()))
        train_beside(cfg, arm, seed)

    monkeypatch.setattr(experiment, '_train_beside', note_the_process)
    side = replace(cfg, out_dir=str(tmp_path / 'out'), side_by_side=True)
    again = run_experiment(side)
    assert [p.name for p in tmp_path.glob('*.pid')] == ['tl.pid']
    assert int((tmp_path / 'tl.pid').read_text()) != os.getpid()
    assert [(r.arm, r.clean_top1, r.corruption_errors, r.history) for r in again] == \
        [(r.arm, r.clean_top1, r.corruption_errors, r.history) for r in results]
    for arm in ('baseline', 'tl', 'stl'):
        assert (Path(side.out_dir) / 'weights' / f'{arm}-seed0' / 'model.safetensors').read_bytes() == \
            (Path(cfg.out_dir) / 'weights' / f'{arm}-seed0' / 'model.safetensors').read_bytes()


def test_student_without_its_teacher_arm_is_refused(tmp_path):
    with pytest.raises(ValueError, match='include the "tl" arm'):
        run_experiment(ExperimentConfig(data_dir=str(tmp_path), out_dir=str(tmp_path), arms=('baseline', 'stl')))
