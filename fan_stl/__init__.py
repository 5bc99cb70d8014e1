"""fan_stl: FAN backbones and Self-emerging Token Labeling (STL) as ordinary timm models.

`import fan_stl` registers every `fan_*` architecture in timm's registry, so `timm.create_model('fan_l_hybrid_stl')`
and `hf-hub:` names work afterwards.
"""
from .models import FAN, checkpoint_filter_fn

__version__ = '0.1.0'
__all__ = ['FAN', 'checkpoint_filter_fn', '__version__']
