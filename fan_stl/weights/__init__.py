"""Pretrained weights: what the authors released, where each copy lives, reading files safely, convert and publish.

Rooms: `released` (the table of released weights), `files` (safe reading, atomic writing, sha256 records),
`checkpoint` (the one loader of a checkpoint file into a model), `network` (the offline switches), `drive` (the
authors' Google Drive files, converted once), `sources` (the order of sources behind `pretrained=True`), `convert`
(Hub folders from checkpoints) and `publish` (the authors' weights to the Hub). This layer imports only the models
(and utils); importing it installs `sources.pretrained_hook` into `fan_stl.models.fan`, which `import fan_stl` does.
"""
from fan_stl.models import fan as _fan

from .checkpoint import load_checkpoint, suggest_architectures
from .files import PretrainedWeightsError, UnsafeCheckpointError, WeightsMismatchError, read_checkpoint
from .released import RELEASED_WEIGHTS, ReleasedWeight, released_weight
from .sources import create_pretrained, pretrained_hook

__all__ = ['RELEASED_WEIGHTS', 'ReleasedWeight', 'released_weight', 'PretrainedWeightsError', 'WeightsMismatchError',
           'UnsafeCheckpointError', 'read_checkpoint', 'load_checkpoint', 'suggest_architectures', 'create_pretrained']

_fan.set_pretrained_hook(pretrained_hook)
