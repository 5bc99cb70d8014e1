"""`python -m fan_stl`: see `fan_stl.cli`."""
import sys

from .cli import main

sys.exit(main())
