"""The autocast dtype vocabulary (`fan_stl.utils.amp`): canonical names, aliases, one clear error; no torch import."""
import subprocess
import sys

import pytest
import torch

from fan_stl.utils import amp
from fan_stl.utils.amp import AMP_NAMES, amp_dtype, amp_name


@pytest.mark.parametrize('name, canonical, dtype', [
    ('bfloat16', 'bfloat16', torch.bfloat16), ('bf16', 'bfloat16', torch.bfloat16),
    ('float16', 'float16', torch.float16), ('fp16', 'float16', torch.float16)])
def test_names_and_aliases_resolve_to_one_dtype(name, canonical, dtype):
    assert amp_name(name) == canonical and amp_dtype(name) is dtype and name in AMP_NAMES


def test_no_amp_and_unknown_names():
    assert amp_name(None) is None
    with pytest.raises(ValueError, match="unknown autocast dtype 'float32'; use one of bfloat16, float16, bf16, fp16"):
        amp_dtype('float32')


def test_the_names_load_without_torch():
    """ `python -m fan_stl eval --help` offers the names without importing torch. """
    code = ('import importlib.util as u, sys; s = u.spec_from_file_location("amp", sys.argv[1]); '
            'm = u.module_from_spec(s); s.loader.exec_module(m); assert "torch" not in sys.modules; print(m.AMP_NAMES)')
    done = subprocess.run([sys.executable, '-c', code, amp.__file__], capture_output=True, text=True, check=True)
    assert 'bf16' in done.stdout
