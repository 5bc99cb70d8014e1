"""FAN models name a missing batch dimension instead of failing deep inside a layer."""
import pytest
import torch

import timm

import fan_stl  # noqa: F401  (registers the models)


@pytest.mark.parametrize('name', ['fan_tiny_12_p16_224', 'fan_tiny_8_p4_hybrid'])
def test_three_d_input_gets_a_clear_error(name):
    model = timm.create_model(name).eval()
    with pytest.raises(ValueError, match=r'batch of images \(B, C, H, W\); got a 3-D tensor.*unsqueeze\(0\)'):
        model(torch.randn(3, 64, 64))
