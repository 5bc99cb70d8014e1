"""`python -m fan_stl.train` (also `python -m fan_stl train`): timm's stock train.py with STL (the launcher is
`fan_stl.training.train_launcher`). `--help` answers without importing torch once its text is cached
(`fan_stl.utils.help_cache`)."""
import sys
from typing import List, Optional

from .cli import run_script_launcher

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    return run_script_launcher('train', 'fan_stl.training.train_launcher', argv)


if __name__ == '__main__':
    sys.exit(main())
