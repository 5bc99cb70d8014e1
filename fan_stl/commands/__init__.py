"""Sub-commands of `python -m fan_stl`, one module each (see `fan_stl.cli`)."""
