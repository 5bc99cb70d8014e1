"""FAN model family; importing this module registers every `fan_*` architecture in timm's registry."""
from .fan import FAN, checkpoint_filter_fn

__all__ = ['FAN', 'checkpoint_filter_fn']
