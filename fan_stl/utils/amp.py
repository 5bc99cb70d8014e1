"""The autocast dtype names fan_stl accepts, in one place.

The canonical names are torch's (`'bfloat16'`, `'float16'`, as timm's train.py `--amp-dtype` takes them); the short
forms `'bf16'` and `'fp16'` are accepted everywhere and mean the same. Stored settings use the canonical name, so a
run asked for with either form is the same run. torch loads only when a dtype is asked for (`amp_dtype`), so a CLI
can offer the names in its `--help` without importing it.
"""
from typing import Dict, Optional

AMP_CANONICAL = ('bfloat16', 'float16')  # torch dtype names
AMP_ALIASES: Dict[str, str] = {'bf16': 'bfloat16', 'fp16': 'float16'}
AMP_NAMES = AMP_CANONICAL + tuple(AMP_ALIASES)  # every accepted spelling, e.g. for argparse `choices`


def amp_name(name: Optional[str]) -> Optional[str]:
    """ The canonical name of an autocast dtype name or alias (None stays None: no autocast); `ValueError` naming
    the accepted names otherwise. """
    if name is None:
        return None
    canonical = AMP_ALIASES.get(name, name)
    if canonical not in AMP_CANONICAL:
        raise ValueError(f'unknown autocast dtype {name!r}; use one of {", ".join(AMP_NAMES)} (or no amp)')
    return canonical


def amp_dtype(name: str) -> 'torch.dtype':  # noqa: F821  (torch loads here, not at import)
    """ The torch dtype of an autocast dtype name or alias (`'bf16'` -> `torch.bfloat16`). """
    import torch
    return getattr(torch, amp_name(name))
