"""`hubconf.py`: torch.hub exposes exactly the FAN entry points and loads official weights through them."""
import importlib.util
from pathlib import Path

import torch

import timm

from .weights.helpers import logits, random_model, save_official

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_hubconf_exposes_only_fan_entrypoints():
    spec = importlib.util.spec_from_file_location('hubconf', REPO_ROOT / 'hubconf.py')
    hubconf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hubconf)
    names = sorted(n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith('_'))
    assert names == sorted(timm.list_models('fan*'))
    assert hubconf.dependencies == ['torch', 'timm']


def test_torch_hub_load_local_with_official_file(tmp_path):
    source = random_model('fan_t_hybrid_stl')
    path = save_official(source, tmp_path / 'fan_t_stl.pth.tar')
    model = torch.hub.load(
        str(REPO_ROOT), 'fan_t_hybrid_stl', source='local', pretrained=True,
        pretrained_cfg_overlay=dict(file=str(path))).eval()
    torch.testing.assert_close(logits(model), logits(source), rtol=0, atol=0)
    tuned = torch.hub.load(str(REPO_ROOT), 'fan_t_hybrid_stl', source='local', pretrained=True, num_classes=5,
                           pretrained_cfg_overlay=dict(file=str(path)))
    assert tuned.head.out_features == tuned.aux_head.out_features == 5
