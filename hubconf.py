"""torch.hub entry points: every registered FAN / STL architecture, e.g.

    torch.hub.load('<repo dir or GitHub name>', 'fan_l_hybrid_stl', pretrained=True)

Each entry point is the timm model function, so it takes `create_model`'s keyword arguments (`num_classes`,
`pretrained_cfg_overlay=dict(file=...)`, ...).
"""
import timm as _timm
from timm.models import model_entrypoint as _model_entrypoint

import fan_stl as _fan_stl  # noqa: F401  (registers the fan_* models)

dependencies = ['torch', 'timm']

globals().update({_name: _model_entrypoint(_name) for _name in _timm.list_models(module='fan')})
