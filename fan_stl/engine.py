"""Deprecated alias of `fan_stl.training.engine` (the training loop moved there, same names); import it from there."""
import warnings

from .training.engine import SAFE_RAND_AUGMENT, TrainConfig, TrainResult, evaluate, train

__all__ = ['SAFE_RAND_AUGMENT', 'TrainConfig', 'TrainResult', 'train', 'evaluate']

warnings.warn('fan_stl.engine moved to fan_stl.training.engine; import it from there.', DeprecationWarning,
              stacklevel=2)
