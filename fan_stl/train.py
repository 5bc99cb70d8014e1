"""`python -m fan_stl.train`: timm's stock train.py with STL (the launcher is `fan_stl.training.train_launcher`)."""
import sys

import fan_stl  # noqa: F401  (registers the fan models for train.py's create_model)
from fan_stl.training.train_launcher import main

__all__ = ['main']

if __name__ == '__main__':
    sys.exit(main())
