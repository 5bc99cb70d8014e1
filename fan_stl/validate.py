"""`python -m fan_stl.validate` (also `python -m fan_stl validate`): timm's stock validate.py on the fan models (the
runner is `fan_stl.training.validate_launcher`). `--help` answers without importing torch once its text is cached
(`fan_stl.utils.help_cache`)."""
import sys
from typing import List, Optional

from .cli import run_script_launcher

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    return run_script_launcher('validate', 'fan_stl.training.validate_launcher', argv)


if __name__ == '__main__':
    sys.exit(main())
