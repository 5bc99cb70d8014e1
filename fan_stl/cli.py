"""Command line interface: `python -m fan_stl <command>` (also installed as `fan-stl`).

Each command lives in its own module exposing `register(subparsers)`, which adds a sub-parser whose `func`
default runs the command and returns an exit code. `COMMANDS` maps each command to its module, in help order.
`FORWARDED` commands are the entry points of timm's scripts, `python -m fan_stl train ...` being
`python -m fan_stl.train ...`: their arguments go to that entry point unparsed.

Start-up stays light: this module and the command modules import only the standard library at their top, and a
command line naming a command builds that command's parser alone, so `--help` and argument errors import neither
torch nor timm. The models are registered in timm just before a command runs (`python -m fan_stl` skips the eager
registration of `import fan_stl`, see the package docstring).
"""
import argparse
import importlib
import sys
from typing import Iterable, List, Optional

from .utils.help_cache import asks_for_help, cached_help

COMMANDS = {
    'demo': 'fan_stl.commands.demo',
    'list': 'fan_stl.commands.list_models',
    'convert': 'fan_stl.commands.convert',
    'publish': 'fan_stl.commands.publish',
    'eval': 'fan_stl.commands.evaluate',
    'corrupt': 'fan_stl.commands.corrupt',
    'label': 'fan_stl.commands.label',
    'segeval': 'fan_stl.commands.segeval',
}
FORWARDED = {  # command -> (entry point module, help)
    'train': ('fan_stl.train', 'train with timm\'s stock train.py and STL (= python -m fan_stl.train; see '
                               'train --help)'),
    'validate': ('fan_stl.validate', 'validate with timm\'s stock validate.py (= python -m fan_stl.validate; see '
                                     'validate --help)'),
}


def build_parser(commands: Iterable[str] = (*COMMANDS, *FORWARDED)) -> argparse.ArgumentParser:
    """ The parser with the sub-parsers of `commands` (default: all of them; a forwarded one for its help line). """
    parser = argparse.ArgumentParser(
        prog='python -m fan_stl',
        description='FAN / STL models for timm: list models, convert weights, train, evaluate robustness.',
    )
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    for name in commands:
        if name in FORWARDED:
            subparsers.add_parser(name, help=FORWARDED[name][1], add_help=False)
        else:
            importlib.import_module(COMMANDS[name]).register(subparsers)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in FORWARDED:
        return importlib.import_module(FORWARDED[argv[0]][0]).main(argv[1:])
    # the top-level parser has no options but -h, so a command, when given, is the first argument
    parser = build_parser(argv[:1] if argv[:1] and argv[0] in COMMANDS else (*COMMANDS, *FORWARDED))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    importlib.import_module('fan_stl.weights')  # registers the fan_* architectures and their pretrained weights
    return args.func(args)


def run_script_launcher(name: str, launcher: str, argv: Optional[List[str]] = None) -> int:
    """ The entry point of a stock-script launcher (`launcher`: a module with `build_parser` and `main`, e.g.
    `fan_stl.training.train_launcher`): `--help` from the cached text, without importing torch, once a run has
    cached it (`fan_stl.utils.help_cache`); otherwise the models registered and the launcher's `main`. """
    argv = sys.argv[1:] if argv is None else list(argv)

    def help_text() -> str:
        return importlib.import_module(launcher).build_parser().format_help()

    if asks_for_help(argv):
        print(cached_help(name, help_text), end='')
        return 0
    importlib.import_module('fan_stl.models')  # registers the fan models for the script's create_model
    launch = importlib.import_module(launcher).main
    cached_help(name, help_text)  # the parser's modules are loaded now: keep its help for a fast `--help`
    return launch(argv)
