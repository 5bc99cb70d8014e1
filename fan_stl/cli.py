"""Command line interface: `python -m fan_stl <command>` (also installed as `fan-stl`).

Each command lives in its own module exposing `register(subparsers)`, which adds a sub-parser whose `func`
default runs the command and returns an exit code. `COMMAND_MODULES` lists them in help order.
"""
import argparse
import importlib
import sys
from typing import List, Optional

COMMAND_MODULES = (
    'fan_stl.commands.demo',
    'fan_stl.commands.list_models',
    'fan_stl.commands.convert',
    'fan_stl.commands.publish',
    'fan_stl.commands.evaluate',
    'fan_stl.commands.corrupt',
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m fan_stl',
        description='FAN / STL models for timm: list models, convert weights, train, evaluate robustness.',
    )
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == '__main__':
    sys.exit(main())
