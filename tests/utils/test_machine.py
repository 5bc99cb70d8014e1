"""The machine and version line of a measurement (`fan_stl.utils.machine`)."""
import platform
import re

import torch

import timm
from fan_stl.utils.machine import machine_description, software_versions, versions_line


def test_cpu_description_names_the_threads():
    text = machine_description(torch.device('cpu'))
    assert re.fullmatch(rf'CPU .+, {torch.get_num_threads()} threads', text)


def test_versions_of_the_given_modules_in_order():
    assert software_versions(torch, timm) == {'python': platform.python_version(), 'torch': torch.__version__,
                                              'timm': timm.__version__}
    assert versions_line(timm) == f'python {platform.python_version()}, timm {timm.__version__}'
