"""Pretrained FAN / STL weights: what the authors released, where each copy lives, and the order of sources.

Every released weight has a Hugging Face Hub repo `fan-stl/<architecture>.<tag>` (safetensors + timm `config.json`
+ model card, written by `python -m fan_stl convert`). `create_model(name, pretrained=True)` takes its weights from
the first source that applies, in this order (decided by `resolve_weight_source`, tested in tests/test_hub.py):

1. what the call names explicitly: an `hf-hub:` / `local-dir:` model name, or `pretrained_cfg_overlay` with
   `state_dict=` or `file=` (an official `.pth.tar` is converted on load by `checkpoint_filter_fn`);
2. the Hub copy, when it is published (`PUBLISHED_HUB_REPOS`), already in the local HF cache, or the weight's only
   source (the STL weights, released on the authors' Google Drive);
3. the authors' direct URL (the FAN GitHub release), converted on load, until the Hub copy is published.

Failures are re-raised as `PretrainedWeightsError` with one message naming the weight, the repo or file and the fix.
"""
import argparse
import pickle
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Dict, FrozenSet, Iterator, List, Mapping, Optional, Tuple
from urllib.error import URLError

import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub import try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError

from timm.models import get_pretrained_cfg, list_models, list_pretrained

__all__ = [
    'HF_HUB_ORG', 'PUBLISHED_HUB_REPOS', 'RELEASED_WEIGHTS', 'ReleasedWeight',
    'PretrainedWeightsError', 'WeightsMismatchError', 'WeightSource', 'released_weight', 'resolve_weight_source',
    'check_pretrained_tag', 'filter_and_check', 'suggest_architectures', 'checked_filter',
]

HF_HUB_ORG = 'fan-stl'

# Hub repos a maintainer has published (`python -m fan_stl convert ... --push`). For a weight that also has a direct
# URL, the Hub copy takes over from the URL once its repo is listed here (or found in the local HF cache).
PUBLISHED_HUB_REPOS: FrozenSet[str] = frozenset()

FAN_RELEASE_URL = 'https://github.com/zhoudaquan/fully_attentional_network_ckpt/releases/download/v1.0.0/'
STL_DRIVE_URL = 'https://drive.google.com/file/d/{}/view?usp=sharing'
HUB_WEIGHTS_FILE = 'model.safetensors'
FilterFn = Callable[[dict, torch.nn.Module], dict]
# The only non-tensor object official training checkpoints hold (their `args`); nothing else is unpickled.
SAFE_CHECKPOINT_GLOBALS = [argparse.Namespace]


@dataclass(frozen=True)
class ReleasedWeight:
    """ One weight file released by the FAN / STL authors, with the numbers they report for it.

    Metrics are top-1 accuracies in % as printed in the authors' README (IN-C: mean accuracy over corruptions, not
    mCE); None where the README gives none.
    """
    name: str  # `architecture.tag` of the Hub copy, whose repo is `HF_HUB_ORG/name`
    original: str  # where the authors publish the file: a direct URL (FAN) or a Google Drive page (STL)
    reported_params: str
    top1: Optional[float] = None
    in_c: Optional[float] = None
    in_a: Optional[float] = None
    in_r: Optional[float] = None
    img_size: int = 224
    aliases: Tuple[str, ...] = ()  # other registered architectures that share this weight

    @property
    def architecture(self) -> str:
        return self.name.split('.')[0]

    @property
    def tag(self) -> str:
        return self.name.split('.', 1)[1]

    @property
    def hub_repo(self) -> str:
        return f'{HF_HUB_ORG}/{self.name}'

    @property
    def direct_url(self) -> str:
        """ The URL timm can download the original file from ('' for Google Drive files). """
        return self.original if self.original.startswith(FAN_RELEASE_URL) else ''

    @property
    def is_stl(self) -> bool:
        return self.architecture.endswith(('_tl', '_stl'))


def _fan(name: str, filename: str, params: str, *metrics: Optional[float], img_size: int = 224) -> ReleasedWeight:
    return ReleasedWeight(name, FAN_RELEASE_URL + filename, params, *metrics, img_size=img_size)


def _stl(short: str, size: str, kind: str, drive_id: str, params: str, *metrics: float) -> ReleasedWeight:
    return ReleasedWeight(
        f'fan_{short}_hybrid_{kind}.in1k', STL_DRIVE_URL.format(drive_id), params, *metrics,
        aliases=(f'fan_{size}_p4_hybrid_{kind}.in1k',))


# In default-tag order: per architecture, the first entry is its best IN-1K classifier at 224 px.
# The IN-22K-only files (`fan_hybrid_{base,large}_in22k.pth.tar`) are left out: their class count is not published.
RELEASED_WEIGHTS: Tuple[ReleasedWeight, ...] = (
    _fan('fan_tiny_12_p16_224.in1k', 'fan_vit_tiny.pth.tar', '7.3M', 79.2, 57.5, 15.6, 42.5),
    _fan('fan_small_12_p16_224.in1k', 'fan_vit_small.pth.tar', '28.0M', 82.5, 64.5, 29.1, 50.4),
    _fan('fan_base_18_p16_224.in1k', 'fan_vit_base.pth.tar', '54.0M', 83.6, 67.0, 35.4, 51.8),
    _fan('fan_tiny_8_p4_hybrid.in1k', 'fan_hybrid_tiny.pth.tar', '7.4M', 80.1, 57.4),
    _fan('fan_small_12_p4_hybrid.in1k', 'fan_hybrid_small.pth.tar', '26.3M', 83.5, 64.7),
    _fan('fan_base_16_p4_hybrid.in22k_ft_in1k', 'fan_hybrid_base_in22k_1k.pth.tar', '50.4M', 85.3, 70.5),
    _fan('fan_base_16_p4_hybrid.in22k_ft_in1k_384', 'fan_hybrid_base_in22k_1k_384.pth.tar', '50.4M', 85.6,
         img_size=384),
    _fan('fan_base_16_p4_hybrid.in1k', 'fan_hybrid_base.pth.tar', '50.4M', 83.9, 66.4),
    _fan('fan_large_16_p4_hybrid.in22k_ft_in1k', 'fan_hybrid_large_in22k_1k.pth.tar', '76.8M', 86.5, 73.6),
    _fan('fan_large_16_p4_hybrid.in22k_ft_in1k_384', 'fan_hybrid_large_in22k_1k_384.pth.tar', '76.8M', 87.1,
         img_size=384),
    _stl('t', 'tiny_8', 'tl', '19H58ISQmp4UE-tJb0S4LRMrwngmYkLYn', '8.0M'),
    _stl('s', 'small_12', 'tl', '1RhAchy8GbEZjSMGBcj9i6Tkd0CDHRQoy', '26.5M'),
    _stl('b', 'base_16', 'tl', '1-7mQK-UuV8rnB1MVhf7NJIdLAG9qHim3', '50.9M'),
    _stl('l', 'large_16', 'tl', '1w5NYL9c8uPmIjSeacLUDwpiWdEGdG5Lc', '77.3M'),
    _stl('t', 'tiny_8', 'stl', '1fiUzJs-9eq9CKay9OamTL4czwUtSeuMq', '8.0M', 79.9, 58.2, 23.7, 42.5),
    _stl('s', 'small_12', 'stl', '1RnN7wF0j-fZtdDLXszEWAVwETCyNhBNM', '26.5M', 83.4, 65.5, 38.2, 51.8),
    _stl('b', 'base_16', 'stl', '1d7Yi48eEL7X68CfQ62dG69PRHe5LEnWG', '50.9M', 84.5, 68.2, 42.6, 55.3),
    _stl('l', 'large_16', 'stl', '1JXM7WxlOwciaK3dalPD4UDqbph-8wUlo', '77.3M', 84.7, 68.8, 46.1, 56.6),
)


def released_weight(name: str) -> Optional[ReleasedWeight]:
    """ The released weight registered as `name` (`architecture.tag`, long or short STL name), or None. """
    for weight in RELEASED_WEIGHTS:
        if name == weight.name or name in weight.aliases:
            return weight
    return None


class PretrainedWeightsError(RuntimeError):
    """ Pretrained weights could not be found, read or loaded; the message says which and how to fix it. """


class WeightsMismatchError(PretrainedWeightsError):
    """ A checkpoint does not fit the architecture it is loaded into. """


def _how_to_fetch(name: str, repo: str) -> str:
    weight = released_weight(name)
    original = f' from {weight.original}' if weight else ''
    arch = name.split('.')[0]
    return (
        f'To fetch it, run `hf download {repo}` while online (then HF_HUB_OFFLINE=1 works), or download the '
        f"authors' file{original} and either load it directly with "
        f"`timm.create_model('{arch}', pretrained=True, pretrained_cfg_overlay=dict(file=PATH))` or convert it "
        f'with `python -m fan_stl convert PATH --model {name} --out DIR` and load '
        f"`timm.create_model('local-dir:DIR', pretrained=True)`.")


@dataclass(frozen=True)
class WeightSource:
    """ The source `create_model(..., pretrained=True)` loads from, chosen by `resolve_weight_source`. """
    name: str  # `architecture.tag` being loaded
    kind: str  # one of 'hf-hub', 'local-dir', 'state_dict', 'file', 'url'
    location: str
    cache_dir: Optional[str] = None

    @property
    def cfg_overlay(self) -> Dict[str, Optional[str]]:
        """ What makes timm's own source choice agree with this one: only the URL must be preferred to the Hub. """
        return {'hf_hub_id': None} if self.kind == 'url' else {}

    @contextmanager
    def loading(self) -> Iterator[None]:
        """ Context for loading from this source: official training dicts (with their `argparse.Namespace`) load
        without executing other pickled code, and a failure is re-raised as a `PretrainedWeightsError` with the fix.
        """
        try:
            with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
                yield
        except PretrainedWeightsError:
            raise
        except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
            raise PretrainedWeightsError(
                f'Weights for {self.name} are not in the local Hugging Face cache (repo {self.location}) and the '
                f'Hub cannot be reached (offline: {hf_constants.HF_HUB_OFFLINE}). '
                + _how_to_fetch(self.name, self.location)) from e
        except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError) as e:
            raise PretrainedWeightsError(
                f'Weights for {self.name}: the Hub repo {self.location} (or its {HUB_WEIGHTS_FILE}) does not exist; '
                f'it may not be published yet. ' + _how_to_fetch(self.name, self.location)) from e
        except FileNotFoundError as e:
            raise PretrainedWeightsError(
                f'Weights for {self.name}: {self.location} does not exist or holds no weight file ({e}). '
                'Check the path; `local-dir:` needs a directory written by `python -m fan_stl convert`.') from e
        except URLError as e:
            raise PretrainedWeightsError(
                f'Weights for {self.name}: downloading {self.location} failed ({e.reason}). Download the file by '
                f"other means and pass `pretrained_cfg_overlay=dict(file=PATH)`, or load the Hub copy "
                f"`hf-hub:{HF_HUB_ORG}/{self.name}` once it is published.") from e
        except (SafetensorError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, RuntimeError) as e:
            if isinstance(e, RuntimeError) and 'PytorchStreamReader' not in str(e):
                raise
            raise PretrainedWeightsError(f'Weights for {self.name}: {self._unreadable_message(e)}') from e

    def _unreadable_message(self, error: Exception) -> str:
        if 'Unsupported global' in str(error):
            return (
                f'the checkpoint from {self.location} holds pickled Python objects beyond tensors and '
                '`argparse.Namespace`, which are not executed here. If you trust the file, re-save its tensors '
                "(`torch.save(torch.load(p, weights_only=False)['state_dict'], 'clean.pth')`) and load that.")
        where = self.location
        if self.kind == 'hf-hub':
            repo, _, revision = self.location.partition('@')
            cached = try_to_load_from_cache(repo, HUB_WEIGHTS_FILE, cache_dir=self.cache_dir, revision=revision or None)
            where = cached if isinstance(cached, str) else f'the cached copy of {repo}'
        elif self.kind == 'url':
            where = f"the copy of {self.location} in the torch hub cache ({torch.hub.get_dir()}/checkpoints)"
        return (
            f'the weight file {where} is truncated or corrupt ({type(error).__name__}: {str(error)[:200]}). '
            'Delete it and download or convert it again.')


def hub_copy_available(repo: str, cache_dir: Optional[str] = None) -> bool:
    """ True when the Hub repo `ORG/NAME[@revision]` is published or its weights are already in the local cache. """
    repo_id, _, revision = repo.partition('@')
    if repo_id in PUBLISHED_HUB_REPOS:
        return True
    cached = try_to_load_from_cache(repo_id, HUB_WEIGHTS_FILE, cache_dir=cache_dir, revision=revision or None)
    return isinstance(cached, str)


def resolve_weight_source(
        variant: str,
        pretrained_cfg: Optional[Mapping] = None,
        cache_dir: Optional[str] = None,
) -> WeightSource:
    """ Choose where `create_model(variant, pretrained=True)` loads from, in the order of the module docstring.

    Args:
        variant: Registered architecture name.
        pretrained_cfg: The resolved pretrained cfg (registry cfg of the tag, with any overlay applied).
        cache_dir: Hugging Face cache directory override (`create_model(cache_dir=...)`).
    """
    cfg = dict(pretrained_cfg or {})
    name = f"{variant}.{cfg['tag']}" if cfg.get('tag') else variant
    hub_id, url = cfg.get('hf_hub_id'), cfg.get('url')
    if cfg.get('source') == 'hf-hub':
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    if cfg.get('source') == 'local-dir':
        return WeightSource(name, 'local-dir', cfg.get('file'), cache_dir)
    if cfg.get('state_dict'):
        return WeightSource(name, 'state_dict', '<state_dict>', cache_dir)
    if cfg.get('file'):
        return WeightSource(name, 'file', cfg['file'], cache_dir)
    if hub_id and (not url or hub_copy_available(hub_id, cache_dir)):
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    if url:
        return WeightSource(name, 'url', url, cache_dir)
    raise PretrainedWeightsError(
        f'No pretrained weights are released for {name} (the authors published none); use pretrained=False, '
        'or pass your own checkpoint with `pretrained_cfg_overlay=dict(file=PATH)`.')


def check_pretrained_tag(variant: str, tag: str) -> None:
    """ Raise a clear `PretrainedWeightsError` when `tag` is not registered for `variant`. """
    try:
        get_pretrained_cfg(f'{variant}.{tag}')
    except RuntimeError:
        known = ', '.join(list_pretrained(f'{variant}.*')) or 'none'
        raise PretrainedWeightsError(
            f"Unknown pretrained tag '{tag}' for {variant}. Weights registered for it: {known}. "
            "`timm.list_pretrained('fan*')` lists every FAN / STL weight.") from None


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
    head = state_dict.get('head.weight')
    matches = []
    for name in list_models('fan*'):
        model = _meta_model(name)
        found, expected = _shapes(filter_fn(dict(state_dict), model)), _shapes(model.state_dict())
        classifier = set(_classifier_keys(('head', 'aux_head')))
        if found.keys() == expected.keys() and all(found[k] == expected[k] for k in found if k not in classifier):
            num_classes = found.get('head.weight', (1000,))[0]
            matches.append(name if num_classes == 1000 else f'{name} (num_classes={num_classes})')
    return matches


def filter_and_check(
        state_dict: Mapping[str, torch.Tensor],
        model: torch.nn.Module,
        filter_fn: FilterFn,
        ignore_classifier: bool = False,
        ignore_first_conv: Optional[str] = None,
) -> dict:
    """ Map `state_dict` to `model`'s layout with `filter_fn`; raise `WeightsMismatchError` unless it loads strictly.

    The message lists missing, unexpected and wrongly shaped keys and the registered architectures the checkpoint
    does fit. `ignore_classifier` skips the class / token heads (re-made for another `num_classes`);
    `ignore_first_conv` names a first conv whose weight timm adapts to another `in_chans`.
    """
    filtered = filter_fn(state_dict, model)
    expected, found = _shapes(model.state_dict()), _shapes(filtered)
    skip = set(_classifier_keys(model.pretrained_cfg.get('classifier'))) if ignore_classifier else set()
    missing = [k for k in expected if k not in found and k not in skip]
    unexpected = [k for k in found if k not in expected and k not in skip]
    shape_skip = skip | ({f'{ignore_first_conv}.weight'} if ignore_first_conv else set())
    mismatched = [
        f'{k}: checkpoint {found[k]} vs model {expected[k]}'
        for k in found if k in expected and k not in shape_skip and found[k] != expected[k]]
    if not (missing or unexpected or mismatched):
        return filtered
    arch = model.pretrained_cfg.get('architecture', type(model).__name__)
    fits = suggest_architectures(state_dict, filter_fn)

    def listing(title: str, keys: List[str]) -> str:
        shown = ', '.join(keys[:6]) + (f', ... ({len(keys)} in all)' if len(keys) > 6 else '')
        return f'\n  {title}: {shown}' if keys else ''

    hint = (f'\nThe checkpoint fits: {", ".join(fits)}.' if fits else
            '\nNo registered FAN architecture fits it; check that it is a FAN / STL checkpoint.')
    raise WeightsMismatchError(
        f'The checkpoint does not fit {arch}:' + listing('missing keys', missing)
        + listing('unexpected keys', unexpected) + listing('wrong shapes', mismatched) + hint)


def checked_filter(filter_fn: FilterFn) -> FilterFn:
    """ Wrap a checkpoint filter so that a checkpoint of another architecture fails with a clear message.

    Tolerates what timm's `load_pretrained` adapts afterwards: the heads when `num_classes` differs from the
    weights' and the first conv when `in_chans` differs.
    """
    def checked(state_dict: dict, model: torch.nn.Module) -> dict:
        cfg = model.pretrained_cfg
        first_conv = cfg.get('first_conv') if model.in_chans != (cfg.get('input_size') or (3,))[0] else None
        return filter_and_check(
            state_dict, model, filter_fn,
            ignore_classifier=model.num_classes != cfg.get('num_classes'),
            ignore_first_conv=first_conv)
    return checked
