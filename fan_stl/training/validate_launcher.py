"""Run timm's stock validate.py on the fan models.

    python -m fan_stl.validate --timm-validate path/to/validate.py [--eval-rule fused|cls] -- [validate.py options]

(`fan_stl.validate` is the entry point; this module is the runner.)

validate.py is not in the timm wheel (take it from timm's repository at the tag of your installed timm) and has no
`--device-modules`-style hook to register a plug-in's models, so it cannot build `fan_*` models by itself. This
launcher registers them (importing fan_stl), loads validate.py unmodified as a module and calls its `main()`. It
replaces two names: `load_checkpoint`, by fan_stl's checkpoint loader (`fan_stl.weights.checkpoint`, so a missing
file or a checkpoint of another head or architecture gives the messages of `eval --checkpoint`), and `create_model`,
to set which output the token-head models (`*_tl`, `*_stl`) are scored on:

* `fused` (default): `cls + 0.5 * max_n(token)`, the inference rule of the published STL numbers;
* `cls`: the class head alone, what STL training validates and chooses its best checkpoint on (`--eval-rule cls`
  reproduces train.py's own evaluation of a checkpoint).

Device: validate.py's own default is `--device cuda`, which fails on a machine without a GPU; without a `--device`
the launcher passes `cuda` when a GPU is visible and `cpu` otherwise (as `python -m fan_stl eval` chooses).
"""
import argparse
import functools
import sys
from types import ModuleType
from typing import List, Optional

import torch

from ..stl.eval_rule import EVAL_RULES, PUBLISHED_RULE, apply_eval_rule
from ..weights.checkpoint import load_checkpoint_for_timm
from ..weights.files import PretrainedWeightsError
from .timm_scripts import ScriptError, load_timm_script, split_command_line

__all__ = ['build_parser', 'load_timm_validate', 'install', 'main', 'with_device']


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m fan_stl.validate',
        description='Validate fan models with timm\'s unmodified validate.py. Options after `--` go to validate.py.')
    parser.add_argument('--timm-validate', required=True, metavar='PATH',
                        help='timm\'s validate.py, from the repository tag matching your installed timm')
    parser.add_argument('--eval-rule', choices=EVAL_RULES, default=PUBLISHED_RULE,
                        help='token-head models: fused cls + 0.5*max(token) logits (the published rule, default) or '
                             'the class head alone (what STL training validates on)')
    return parser


def load_timm_validate(path: str) -> ModuleType:
    """ Load validate.py as a module (without running it) and check it has the names the launcher uses. """
    return load_timm_script(path, 'validate.py', ('main', 'create_model', 'load_checkpoint'))


def install(module: ModuleType, eval_rule: str) -> None:
    """ Make validate.py's `create_model` set the eval rule on token-head models. """
    original = module.create_model

    @functools.wraps(original)
    def create_model(*args, **kwargs):
        model = original(*args, **kwargs)
        apply_eval_rule(model, eval_rule)
        return model

    module.create_model = create_model
    module.load_checkpoint = load_checkpoint_for_timm


def with_device(script_argv: List[str]) -> List[str]:
    """ validate.py's options with `--device` added when not given: cuda when a GPU is visible, else cpu. """
    if any(arg == '--device' or arg.startswith('--device=') for arg in script_argv):
        return script_argv
    return ['--device', 'cuda' if torch.cuda.is_available() else 'cpu'] + script_argv


def main(argv: Optional[List[str]] = None) -> int:
    ours, script_argv = split_command_line(argv)
    parser = build_parser()
    options = parser.parse_args(ours)
    try:
        module = load_timm_validate(options.timm_validate)
    except ScriptError as e:
        parser.error(str(e))
    install(module, options.eval_rule)
    sys.argv = [options.timm_validate] + with_device(script_argv)
    try:
        module.main()
    except PretrainedWeightsError as e:  # the checkpoint's problem in eval's words, not timm's raw error
        print(f'error: {e.cli_message}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
