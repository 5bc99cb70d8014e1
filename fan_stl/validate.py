"""`python -m fan_stl.validate`: timm's stock validate.py on the fan models (the runner is
`fan_stl.training.validate_launcher`)."""
import sys

import fan_stl  # noqa: F401  (registers the fan models for validate.py's create_model)
from fan_stl.training.validate_launcher import build_parser, install, load_timm_validate, main

__all__ = ['build_parser', 'install', 'load_timm_validate', 'main']

if __name__ == '__main__':
    sys.exit(main())
