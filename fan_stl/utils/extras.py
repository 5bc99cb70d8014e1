"""The optional extras of fan_stl and the install hint that works from a checkout (standard library only).

fan_stl is installed from its source tree (`pip install -e .`), so the hints name the editable install with the
extra, or the plain packages the extra pulls in.
"""
import importlib.util
from typing import Dict, List

# extra -> {module imported: PyPI package providing it}; mirrors [project.optional-dependencies] of pyproject.toml
EXTRAS: Dict[str, Dict[str, str]] = {
    'robustness': {'imagecorruptions': 'imagecorruptions-imaug', 'matplotlib': 'matplotlib'},
    'seg': {'segmentation_models_pytorch': 'segmentation-models-pytorch'},
}


def install_hint(extra: str) -> str:
    """ The command that installs `extra`: from a fan_stl checkout, or its packages alone. """
    return f'pip install -e ".[{extra}]" in the fan_stl checkout (or: pip install {" ".join(EXTRAS[extra].values())})'


def missing_modules(extra: str) -> List[str]:
    """ The modules of `extra` that cannot be imported here (found without importing them). """
    return [module for module in EXTRAS[extra] if importlib.util.find_spec(module) is None]
