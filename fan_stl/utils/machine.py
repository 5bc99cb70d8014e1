"""What a measurement ran on: the device (GPU name and CUDA version, or CPU model and threads) and the versions.

Benchmarks and the demo record these next to their numbers; pass the modules whose versions matter
(`software_versions(torch, timm, fan_stl)`), since this bottom layer imports nothing from fan_stl.
"""
import platform
from types import ModuleType
from typing import Dict, Optional

import torch


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_description(device: Optional[torch.device] = None) -> str:
    """ `'<GPU name>, CUDA <version>'` for a CUDA device, else `'CPU <model>, <n> threads'` (torch's thread count);
    `device` None means the GPU when there is one. """
    device = torch.device(device if device is not None else 'cuda' if torch.cuda.is_available() else 'cpu')
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}'
    return f'CPU {_cpu_model()}, {torch.get_num_threads()} threads'


def software_versions(*modules: ModuleType) -> Dict[str, str]:
    """ `{'python': ..., '<module>': <its __version__>, ...}` for the given modules, in that order. """
    return {'python': platform.python_version(), **{m.__name__: str(getattr(m, '__version__', 'unknown'))
                                                     for m in modules}}


def versions_line(*modules: ModuleType) -> str:
    """ `'python 3.x, torch 2.x, ...'`: `software_versions` as one line. """
    return ', '.join(f'{name} {version}' for name, version in software_versions(*modules).items())
