"""`fan_stl.weights.files`: weight files written atomically and as readable as the package's other files."""
import os
import stat

import torch

from fan_stl.weights.files import save_safetensors_atomic


def test_safetensors_are_written_with_the_usual_mode_not_owner_only(tmp_path):
    umask = os.umask(0o022)
    try:
        path = save_safetensors_atomic({'w': torch.ones(2)}, tmp_path / 'model.safetensors')
    finally:
        os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # safetensors alone writes 0o600
    assert [p.name for p in tmp_path.iterdir()] == ['model.safetensors']  # no temp file left beside it
