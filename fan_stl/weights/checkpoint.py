"""Reading a checkpoint file into a model: the one loader behind `file=`, `eval --checkpoint`, teachers and validate.

`load_checkpoint(model, path)` reads the file without running pickled code (`files.read_checkpoint`), maps it to the
model's layout (FAN models: `checkpoint_filter_fn`, which converts the official checkpoints; any other timm model:
DDP / compile prefixes stripped), and loads it strictly. What does not fit is one `WeightsMismatchError`: a head
of another class count says which `num_classes` fits; keys or shapes beyond the heads say that the checkpoint
belongs to another architecture and name the registered FAN architectures it fits. `checked_filter` gives
`create_model(..., pretrained=True)` the same checks, and `load_checkpoint_for_timm` stands in for timm's
`load_checkpoint` in its stock validate.py.
"""
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Tuple, Union

import torch
from timm.models import clean_state_dict, list_models

from fan_stl.models import fan as fan_models

from .files import WeightsMismatchError, check_state_dict, pick_state_dict, read_checkpoint

__all__ = ['FilterFn', 'load_checkpoint', 'load_checkpoint_for_timm', 'filter_and_check', 'checked_filter',
           'suggest_architectures', 'registered_filter_fn']

FilterFn = Callable[[dict, torch.nn.Module], dict]


def registered_filter_fn(model: torch.nn.Module) -> FilterFn:
    """ How a checkpoint maps onto `model`: FAN's `checkpoint_filter_fn` (official checkpoints converted), or for any
    other model its own keys with DDP / compile prefixes stripped. """
    if type(model).__module__ == fan_models.__name__:
        return fan_models.checkpoint_filter_fn
    return lambda state_dict, _model: clean_state_dict(state_dict)


def _shapes(state_dict: Mapping[str, torch.Tensor]) -> Dict[str, Tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in state_dict.items()}


def _classifier_keys(classifiers) -> Tuple[str, ...]:
    names = (classifiers,) if isinstance(classifiers, str) else tuple(classifiers or ())
    return tuple(f'{n}.{p}' for n in names for p in ('weight', 'bias'))


@lru_cache(maxsize=None)
def _meta_model(name: str) -> torch.nn.Module:
    from timm import create_model  # the registry entrypoint, built on the meta device (no memory, no init)
    return create_model(name, device='meta')


def suggest_architectures(state_dict: Mapping[str, torch.Tensor], filter_fn: FilterFn) -> List[str]:
    """ Registered FAN architectures `state_dict` loads into strictly after `filter_fn` (`num_classes=N` if not 1000).
    """
    matches = []
    classifier = set(_classifier_keys(('head', 'aux_head')))
    for name in list_models('fan*'):
        model = _meta_model(name)
        found, expected = _shapes(filter_fn(dict(state_dict), model)), _shapes(model.state_dict())
        if found.keys() == expected.keys() and all(found[k] == expected[k] for k in found if k not in classifier):
            num_classes = found.get('head.weight', (1000,))[0]
            matches.append(name if num_classes == 1000 else f'{name} (num_classes={num_classes})')
    return matches


def _listing(title: str, keys: List[str]) -> str:
    shown = ', '.join(keys[:6]) + (f', ... ({len(keys)} in all)' if len(keys) > 6 else '')
    return f'\n  {title}: {shown}' if keys else ''


def filter_and_check(
        state_dict: Mapping[str, torch.Tensor],
        model: torch.nn.Module,
        filter_fn: FilterFn,
        ignore_classifier: bool = False,
        ignore_first_conv: Optional[str] = None,
        where: str = 'The checkpoint',
) -> dict:
    """ Map `state_dict` to `model`'s layout with `filter_fn`; raise `WeightsMismatchError` unless it loads strictly.

    When only the class / token heads differ, the message names the class count that fits (and the error carries it
    as `checkpoint_classes`); otherwise it lists missing, unexpected and wrongly shaped keys, says the checkpoint
    belongs to another architecture and names the registered ones it fits. `ignore_classifier` skips the heads
    (re-made for another `num_classes`); `ignore_first_conv` names a first conv that timm adapts to another
    `in_chans`; `where` is how the message names the checkpoint.
    """
    filtered = filter_fn(state_dict, model)
    expected, found = _shapes(model.state_dict()), _shapes(filtered)
    heads = set(_classifier_keys(model.pretrained_cfg.get('classifier')))
    skip = heads if ignore_classifier else set()
    missing = [k for k in expected if k not in found and k not in skip]
    unexpected = [k for k in found if k not in expected and k not in skip]
    shape_skip = skip | ({f'{ignore_first_conv}.weight'} if ignore_first_conv else set())
    mismatched = [k for k in found if k in expected and k not in shape_skip and found[k] != expected[k]]
    if not (missing or unexpected or mismatched):
        return filtered
    arch = model.pretrained_cfg.get('architecture', type(model).__name__)
    if not (missing or unexpected) and set(mismatched) <= heads:
        key = min((k for k in mismatched if k.endswith('.weight')), key=lambda k: (k != 'head.weight', k))
        classes, built = found[key][0], expected[key][0]
        message = (f'{where} has a {classes}-class head ({key} {found[key]}) but {arch} was built with {built} '
                   'classes: pass {fix}.')
        error = WeightsMismatchError(message.replace('{fix}', f'num_classes={classes}'),
                                     message.replace('{fix}', f'--num-classes {classes}'))
        error.checkpoint_classes = classes
        raise error
    fits = suggest_architectures(state_dict, filter_fn)
    hint = (f'\nIt belongs to another architecture. The checkpoint fits: {", ".join(fits)}.' if fits else
            '\nNo registered FAN architecture fits it; check that it is a checkpoint of this model.')
    shapes = [f'{k}: checkpoint {found[k]} vs model {expected[k]}' for k in mismatched]
    message = (f'{where} does not fit {arch}:' + _listing('missing keys', missing)
               + _listing('unexpected keys', unexpected) + _listing('wrong shapes', shapes) + hint)
    raise WeightsMismatchError(message, message.replace('(num_classes=', '(--num-classes '))


def load_checkpoint(
        model: torch.nn.Module,
        path: Union[str, Path],
        use_ema: bool = True,
        filter_fn: Optional[FilterFn] = None,
) -> str:
    """ Read the checkpoint file `path` into `model`, strictly; return which part of the file was loaded.

    Args:
        model: The built model (its `num_classes` must be the checkpoint's).
        path: A flat state dict, a training dict (its EMA weights first when `use_ema`) or a safetensors file.
        use_ema: Prefer the EMA weights of a training dict.
        filter_fn: How the checkpoint maps onto `model` (default: `registered_filter_fn(model)`).

    Raises:
        PretrainedWeightsError: a missing, truncated or unsafe file, non-finite weights, or (`WeightsMismatchError`)
            a checkpoint of another class count or architecture, each with one message naming the fix.
    """
    state_dict, picked = read_checkpoint(path, use_ema=use_ema)
    filtered = filter_and_check(state_dict, model, filter_fn or registered_filter_fn(model), where=str(path))
    model.load_state_dict(filtered, strict=True)
    return picked


def load_checkpoint_for_timm(model: torch.nn.Module, checkpoint_path: str, use_ema: bool = True, device='cpu',
                             strict: bool = True, remap: bool = False, filter_fn=None) -> None:
    """ timm's `load_checkpoint` signature over `load_checkpoint`, for timm's stock scripts (`device`, `strict`,
    `remap` and `filter_fn` are accepted for the signature; loading is always strict and on the CPU first). """
    load_checkpoint(model, checkpoint_path, use_ema=use_ema)


def checked_filter(filter_fn: FilterFn, strict: bool = True) -> FilterFn:
    """ Wrap a checkpoint filter so that non-finite weights are refused and, if `strict`, a checkpoint of another
    architecture fails with a clear message.

    Keeps the class / token heads when their shapes fit the model (a fine-tuned checkpoint loaded with its own
    `num_classes`); re-initialises them only when they do not fit and `num_classes` differs from the weights'.
    Tolerates the first conv that timm adapts to another `in_chans`.
    """
    def checked(state_dict: dict, model: torch.nn.Module) -> dict:
        cfg = model.pretrained_cfg
        name = cfg.get('architecture', type(model).__name__)
        state_dict = check_state_dict(pick_state_dict(state_dict)[0], f'The pretrained weights for {name}')
        filtered = filter_fn(state_dict, model)
        expected = _shapes(model.state_dict())
        heads = _classifier_keys(cfg.get('classifier'))
        heads_fit = all(k in filtered and tuple(filtered[k].shape) == expected.get(k) for k in heads if k in expected)
        if heads_fit and model.num_classes != cfg.get('num_classes'):
            cfg['num_classes'] = model.num_classes  # timm keeps heads whose class count matches the model's
        if not strict:
            return filtered
        first_conv = cfg.get('first_conv') if model.in_chans != (cfg.get('input_size') or (3,))[0] else None
        return filter_and_check(
            state_dict, model, filter_fn,
            ignore_classifier=model.num_classes != cfg.get('num_classes'),
            ignore_first_conv=first_conv)
    return checked
