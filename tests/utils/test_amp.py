"""The autocast dtype vocabulary (`fan_stl.utils.amp`): canonical names, aliases, one clear error."""
import pytest
import torch

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
