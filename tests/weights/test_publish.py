"""`python -m fan_stl publish` over a fake authors' source: files, cards, verification, allow-list push, resume."""
import fnmatch
import json
from pathlib import Path

import pytest
from PIL import Image
from huggingface_hub import HfApi
from huggingface_hub import constants as hf_constants

from fan_stl.weights import drive, released, sources
from fan_stl.cli import main

from .helpers import fake_drive, not_published, offline_hub, random_model, save_official  # noqa: F401

WEIGHTS = ('fan_t_hybrid_tl.in1k', 'fan_t_hybrid_stl.in1k')


@pytest.fixture
def authors(offline_hub, fake_drive, monkeypatch, tmp_path):
    """ The authors' Drive files of two tiny weights, served by the fake Drive; online mode, no real network. """
    monkeypatch.setattr(hf_constants, 'HF_HUB_OFFLINE', False)
    monkeypatch.setattr(sources, 'download_from_hub', not_published)  # no Hub copy is published yet
    for name in WEIGHTS:
        weight = released.released_weight(name)
        fake_drive.files[weight.drive_id] = save_official(random_model(weight.architecture), tmp_path / f'{name}.pth')
    return fake_drive


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """ A mocked HfApi: cards of published repos, and what each upload received. """
    state = {'cards': {}, 'uploads': {}}

    def hf_hub_download(self, repo_id, filename, **kwargs):
        if repo_id not in state['cards']:
            raise FileNotFoundError(repo_id)
        path = tmp_path / 'downloaded' / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(state['cards'][repo_id])
        return str(path)

    def upload_folder(self, repo_id, folder_path, allow_patterns=None, **kwargs):
        names = sorted(p.name for p in Path(folder_path).iterdir()
                       if any(fnmatch.fnmatch(p.name, a) for a in allow_patterns or ['*']))
        state['uploads'][repo_id] = names
        state['cards'][repo_id] = (Path(folder_path) / 'README.md').read_text()
        return f'https://huggingface.co/{repo_id}/commit/1'

    monkeypatch.setattr(HfApi, 'hf_hub_download', hf_hub_download)
    monkeypatch.setattr(HfApi, 'create_repo', lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(HfApi, 'upload_folder', upload_folder)
    return state


def test_dry_run_writes_verified_folders_and_pushes_nothing(authors, fake_hub, tmp_path, capsys):
    work = tmp_path / 'work'
    assert main(['publish', '--only', 'fan_t_hybrid_*', '--dry-run', '--work-dir', str(work)]) == 0
    out = capsys.readouterr().out
    assert out.count('dry-run') == 2 and '7.66M params (authors print 8.0M)' in out
    assert sorted(p.name for p in work.iterdir()) == sorted(WEIGHTS)
    for name in WEIGHTS:
        folder = work / name
        assert sorted(p.name for p in folder.iterdir()) == ['README.md', 'config.json', 'model.safetensors']
        card = (folder / 'README.md').read_text()
        weight = released.released_weight(name)
        sha = next(drive.authors_cache_dir().glob(f'{name}.gdrive-*')).name.split('.sha256-')[1].split('.')[0]
        assert f'Original file sha256:** {sha}' in card and 'license: cc-by-nc-sa-4.0' in card
        assert weight.original in card and f'hf-hub:{weight.hub_repo}' in card
        assert json.loads((folder / 'config.json').read_text())['pretrained_cfg']['tag'] == 'in1k'
    assert 'ImageNet-1k: 79.9' in (work / 'fan_t_hybrid_stl.in1k' / 'README.md').read_text()
    assert fake_hub['uploads'] == {}


def test_push_sends_only_the_written_files_and_a_rerun_resumes(authors, fake_hub, tmp_path, capsys):
    work = tmp_path / 'work'
    (work / 'fan_t_hybrid_tl.in1k').mkdir(parents=True)
    (work / 'fan_t_hybrid_tl.in1k' / 'notes.txt').write_text('left here by the maintainer')
    assert main(['publish', '--only', 'fan_t_hybrid_*', '--work-dir', str(work)]) == 0
    assert capsys.readouterr().out.count(' pushed ') == 2
    assert fake_hub['uploads'] == {f'fan-stl/{n}': ['README.md', 'config.json', 'model.safetensors'] for n in WEIGHTS}
    fake_hub['uploads'].clear()
    assert main(['publish', '--only', 'fan_t_hybrid_*', '--work-dir', str(work)]) == 0
    assert capsys.readouterr().out.count('up to date') == 2 and fake_hub['uploads'] == {}
    assert len(authors.calls) == 2  # each original was downloaded once, then read from the converted cache


def test_unknown_pattern_and_wrong_verification_folder(authors, fake_hub, tmp_path, capsys):
    assert main(['publish', '--only', 'fan_nope*', '--dry-run']) == 1
    assert "--only 'fan_nope*' matches no released weight" in capsys.readouterr().err
    images = tmp_path / 'val'
    for cls in ('a', 'b'):
        (images / cls).mkdir(parents=True)
        Image.new('RGB', (8, 8)).save(images / cls / 'x.png')
    assert main(['publish', '--only', 'fan_t_hybrid_stl.*', '--dry-run', '--work-dir', str(tmp_path / 'w'),
                 '--verify-imagenet', str(images), '--limit', '10']) == 1
    assert 'has 2 class folders; the model predicts 1000 classes' in capsys.readouterr().err


def test_missing_verify_folder_is_refused_before_any_work(authors, fake_hub, tmp_path, capsys):
    """ a missing --verify-imagenet folder ended in a bare AssertionError after the conversion. """
    work = tmp_path / 'work'
    assert main(['publish', '--only', 'fan_t_hybrid_tl.in1k', '--work-dir', str(work), '--verify-imagenet',
                 str(tmp_path / 'absent')]) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: --verify-imagenet') and 'no such folder' in err and 'Traceback' not in err
    assert not authors.calls and not work.exists()  # nothing downloaded, nothing converted
