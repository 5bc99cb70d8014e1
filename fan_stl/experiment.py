"""Deprecated alias of `fan_stl.demo.experiment` (the demo's pieces live in `fan_stl/demo/`); import it from there."""
import sys
import warnings

from .demo import experiment

warnings.warn('fan_stl.experiment moved to fan_stl.demo.experiment; import it from there', DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = experiment
