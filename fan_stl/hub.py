"""Pretrained FAN / STL weights: what the authors released, where each copy lives, and the order of sources.

Every released weight has a Hugging Face Hub repo `fan-stl/<architecture>.<tag>` once a maintainer publishes it
(`python -m fan_stl publish`). `create_model(name, pretrained=True)` takes its weights from the first source that
applies, in this order (decided by `resolve_weight_source`, tested in tests/test_hub.py):

1. what the call names explicitly: an `hf-hub:` / `local-dir:` model name, or `pretrained_cfg_overlay` with
   `state_dict=` or `file=` (an official `.pth.tar` is converted on load by `checkpoint_filter_fn`);
2. the Hub copy, when it is in the local HF cache or, online, the Hub holds it (one metadata request with a short
   timeout; nothing to edit when a repo is published, and no request at all with `HF_HUB_OFFLINE=1`);
3. the authors' own source, converted on load: the FAN GitHub release URL (timm downloads it), or for the STL
   weights the authors' Google Drive (downloaded with `gdown`, converted once, and kept as a safetensors copy in
   `<torch hub dir>/checkpoints/fan_stl/`, named by the Drive id and the sha256 of the original, so later loads
   read no pickle).

Failures are re-raised as `PretrainedWeightsError` with one message naming the weight, the file and the fix.
"""
import importlib
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, ContextManager, Dict, Iterator, List, Mapping, Optional, Tuple, Union
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

from timm.models import get_pretrained_cfg, list_models, list_pretrained, resolve_pretrained_cfg

from fan_stl.weight_files import (
    SAFE_CHECKPOINT_GLOBALS,
    PretrainedWeightsError,
    UnsafeCheckpointError,
    WeightsMismatchError,
    check_state_dict,
    pick_state_dict,
    read_checkpoint,
    read_safetensors_metadata,
    save_safetensors_atomic,
    sha256_of,
    unreadable_file_error,
)

__all__ = [
    'HF_HUB_ORG', 'RELEASED_WEIGHTS', 'ReleasedWeight', 'PretrainedWeightsError', 'WeightsMismatchError',
    'UnsafeCheckpointError', 'WeightSource', 'released_weight', 'resolve_weight_source', 'hub_copy_available',
    'fetch_authors_copy', 'cached_authors_copy', 'authors_cache_dir', 'prepare_pretrained', 'load_weights_file',
    'check_pretrained_tag', 'filter_and_check', 'suggest_architectures', 'checked_filter',
]

HF_HUB_ORG = 'fan-stl'
FAN_RELEASE_URL = 'https://github.com/zhoudaquan/fully_attentional_network_ckpt/releases/download/v1.0.0/'
STL_DRIVE_URL = 'https://drive.google.com/file/d/{}/view?usp=sharing'
HUB_WEIGHTS_FILE = 'model.safetensors'
HUB_CHECK_TIMEOUT = 3.0  # seconds for the one metadata request that asks the Hub whether a copy is published
DRIVE_TIMEOUT = (10.0, 60.0)  # gdown: seconds to connect, and between bytes
FilterFn = Callable[[dict, torch.nn.Module], dict]


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
    def drive_id(self) -> str:
        """ The Google Drive file id of the original ('' for files with a direct URL). """
        return '' if self.direct_url else self.original.split('/d/')[1].split('/')[0]

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




def _manual_fallback(name: str) -> Tuple[str, str]:
    """ How to load a weight by hand, for Python and for the CLI: the authors' file, then `file=` / `--checkpoint`. """
    weight = released_weight(name)
    arch = name.split('.')[0]
    download = f"download the authors' file from {weight.original} by hand, then " if weight else ''
    python = (f"{download}load it with `timm.create_model('{arch}', pretrained=True, "
              "pretrained_cfg_overlay=dict(file=PATH))`.")
    cli = f'{download}pass it with `--checkpoint PATH`.'
    return python, cli


def _error(problem: str, name: str, error: type = PretrainedWeightsError) -> PretrainedWeightsError:
    python, cli = _manual_fallback(name)
    return error(f'{problem} To load it anyway, {python}', f'{problem} To load it anyway, {cli}')


def _offline() -> bool:
    return bool(hf_constants.HF_HUB_OFFLINE)


# --- the authors' Google Drive, converted once ---------------------------------------------------------------------

def authors_cache_dir() -> Path:
    """ Where converted copies of the authors' Google Drive files are kept (next to timm's URL downloads). """
    return Path(torch.hub.get_dir()) / 'checkpoints' / 'fan_stl'


def _cache_file(weight: ReleasedWeight, sha256: str) -> Path:
    return authors_cache_dir() / f'{weight.name}.gdrive-{weight.drive_id}.sha256-{sha256}.safetensors'


def cached_authors_copy(weight: ReleasedWeight) -> Optional[Path]:
    """ The newest converted copy of `weight`'s Drive file whose name and metadata agree on source id and sha256. """
    pattern = f'{weight.name}.gdrive-{weight.drive_id}.sha256-*.safetensors'
    candidates = sorted(authors_cache_dir().glob(pattern), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        meta = read_safetensors_metadata(path)
        if path.name == _cache_file(weight, meta.get('sha256', '')).name and meta.get('source_id') == weight.drive_id:
            return path
    return None


def download_from_drive(drive_id: str, output: Path) -> None:
    """ Download one Google Drive file with `gdown` (progress bar on stderr). Tests replace this function. """
    import gdown
    gdown.download(id=drive_id, output=str(output), quiet=False, timeout=DRIVE_TIMEOUT)


def _refuse_web_page(path: Path, weight: ReleasedWeight) -> None:
    with path.open('rb') as f:
        head = f.read(4096)
    if b'<html' not in head.lower() and b'<!doctype' not in head.lower():
        return
    quota = b'too many users' in head.lower() or b'quota' in head.lower()
    what = ("its 'too many users have viewed or downloaded this file' quota page" if quota else
            'a web page (the Drive page may have changed)')
    raise _error(f"Google Drive sent {what} instead of the weights of {weight.name}.", weight.name)


def fetch_authors_copy(weight: ReleasedWeight) -> Path:
    """ The converted safetensors copy of an STL weight: cached, or downloaded from Drive and converted now.

    The original is read without executing pickled code, mapped to this package's layout, checked against the
    architecture (strict keys and shapes, finite values), and written atomically as
    `<name>.gdrive-<id>.sha256-<sha256 of the original>.safetensors`; the original is then deleted.
    """
    cached = cached_authors_copy(weight)
    if cached is not None:
        return cached
    if _offline():
        raise _error(
            f'Weights for {weight.name} are not cached ({authors_cache_dir()}) and HF_HUB_OFFLINE=1 forbids '
            "downloading them from the authors' Google Drive. Unset HF_HUB_OFFLINE while online.", weight.name)
    folder = authors_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix='.download-', dir=folder) as tmp:
        original = Path(tmp) / f'{weight.drive_id}.pth.tar'
        try:
            download_from_drive(weight.drive_id, original)
        except Exception as e:  # gdown raises its own, requests' and OS errors; all mean the same to the user
            raise _error(f"Downloading {weight.name} from the authors' Google Drive ({weight.original}) failed "
                         f'({type(e).__name__}: {str(e).strip()[:300]}).', weight.name) from None
        if not original.is_file():
            raise _error(f'Google Drive returned no file for {weight.name}.', weight.name)
        _refuse_web_page(original, weight)
        sha256 = sha256_of(original)
        state_dict, _ = read_checkpoint(original)
        model = _meta_model(weight.architecture)
        converted = filter_and_check(state_dict, model, registered_filter_fn(model))
        metadata = {'source': weight.original, 'source_id': weight.drive_id, 'sha256': sha256, 'format': 'pt'}
        return save_safetensors_atomic(converted, _cache_file(weight, sha256), metadata)


# --- where a load comes from --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class WeightSource:
    """ The source `create_model(..., pretrained=True)` loads from, chosen by `resolve_weight_source`. """
    name: str  # `architecture.tag` being loaded
    kind: str  # one of 'hf-hub', 'local-dir', 'state_dict', 'file', 'url', 'gdrive'
    location: str
    cache_dir: Optional[str] = None
    chosen: bool = False  # True when the package chose this source (a registered weight), not the caller

    def fetch(self) -> Dict[str, Optional[str]]:
        """ Get what must exist before the model is built; return the cfg overlay that makes timm load from it. """
        if self.kind == 'gdrive':
            path = fetch_authors_copy(released_weight(self.name))
            return {'hf_hub_id': None, 'url': None, 'file': str(path)}
        if self.kind == 'url':
            return {'hf_hub_id': None}  # torch.hub reads its cached copy, or downloads (no retries) with a bar
        if self.kind == 'hf-hub' and self.chosen and not _offline():
            cached = self._file()
            repo, _, revision = self.location.partition('@')
            if cached is not None and _ask_hub(repo, revision or None) is None:  # no network: skip the Hub's retries
                return {'hf_hub_id': None, 'url': None, 'file': str(cached)}
        if self.kind == 'file' and not Path(self.location).is_file():
            raise PretrainedWeightsError(f'Checkpoint {self.location} does not exist or is not a file.')
        return {}

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
        except Exception as e:
            translated = self._translate(e)
            if translated is None:
                raise
            raise translated from None

    def _translate(self, error: Exception) -> Optional[PretrainedWeightsError]:
        if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled)):
            return _error(f'Weights for {self.name} are not in the local Hugging Face cache (repo {self.location}) '
                          f'and the Hub cannot be reached (HF_HUB_OFFLINE={int(_offline())}).', self.name)
        if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError)):
            return _error(f'Weights for {self.name}: the Hub repo {self.location} (or its {HUB_WEIGHTS_FILE}) does '
                          'not exist.', self.name)
        path = self._file()
        unreadable = unreadable_file_error(error, path, f'Weights for {self.name}: {path or self._where()}')
        if unreadable is not None:
            return unreadable
        if isinstance(error, URLError):
            return _error(f'Weights for {self.name}: downloading {self.location} failed ({error.reason}).', self.name)
        if self.kind in ('file', 'local-dir') and (path is None or not path.is_file()):
            return PretrainedWeightsError(
                f'Weights for {self.name}: {self.location} does not exist or holds no weight file ({error}). Check '
                'the path; `local-dir:` needs a folder written by `python -m fan_stl convert` (model.safetensors + '
                'config.json).')
        if path is not None:
            read_checkpoint(path)  # raises the clear message when the file's content is what failed
        return None

    def _file(self) -> Optional[Path]:
        """ The local file this source reads, when there is one. """
        if self.kind == 'file':
            return Path(self.location)
        if self.kind == 'local-dir':
            found = [Path(self.location) / n for n in (HUB_WEIGHTS_FILE, 'pytorch_model.bin')]
            return next((p for p in found if p.is_file()), None)
        if self.kind == 'hf-hub':
            repo, _, revision = self.location.partition('@')
            cached = try_to_load_from_cache(repo, HUB_WEIGHTS_FILE, cache_dir=self.cache_dir, revision=revision or None)
            return Path(cached) if isinstance(cached, str) else None
        if self.kind == 'url':
            cached = Path(torch.hub.get_dir()) / 'checkpoints' / os.path.basename(self.location)
            return cached if cached.is_file() else None
        return None

    def _where(self) -> str:
        return f'the weight file of {self.location}'


_HUB_ANSWERS: Dict[str, Optional[bool]] = {}


def _ask_hub(repo_id: str, revision: Optional[str]) -> Optional[bool]:
    """ Whether the Hub repo holds `model.safetensors`: asked once per process (short timeout, no retries); None when
    the Hub cannot be reached. """
    key = f'{repo_id}@{revision or ""}'
    if key not in _HUB_ANSWERS:
        from huggingface_hub import HfApi
        try:
            info = HfApi(library_name='fan_stl').model_info(repo_id, revision=revision, timeout=HUB_CHECK_TIMEOUT)
            _HUB_ANSWERS[key] = HUB_WEIGHTS_FILE in {s.rfilename for s in info.siblings or ()}
        except (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError):
            _HUB_ANSWERS[key] = False  # not published (yet)
        except Exception:  # no network, a timeout, a gated or private repo: no answer
            _HUB_ANSWERS[key] = None
    return _HUB_ANSWERS[key]


def _hub_holds_weights(repo_id: str, revision: Optional[str]) -> bool:
    return _ask_hub(repo_id, revision) is True


def hub_copy_available(repo: str, cache_dir: Optional[str] = None) -> bool:
    """ True when the Hub repo `ORG/NAME[@revision]` has its weights in the local cache or, online, on the Hub. """
    repo_id, _, revision = repo.partition('@')
    cached = try_to_load_from_cache(repo_id, HUB_WEIGHTS_FILE, cache_dir=cache_dir, revision=revision or None)
    if isinstance(cached, str):
        return True
    return not _offline() and _hub_holds_weights(repo_id, revision or None)


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
    weight = released_weight(name)
    if cfg.get('source') == 'hf-hub':
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    if cfg.get('source') == 'local-dir':
        return WeightSource(name, 'local-dir', cfg.get('file'), cache_dir)
    if cfg.get('state_dict'):
        return WeightSource(name, 'state_dict', '<state_dict>', cache_dir)
    if cfg.get('file'):
        return WeightSource(name, 'file', cfg['file'], cache_dir)
    if hub_id and hub_copy_available(hub_id, cache_dir):
        return WeightSource(name, 'hf-hub', hub_id, cache_dir, chosen=True)
    if url:
        return WeightSource(name, 'url', url, cache_dir)
    if weight is not None and weight.drive_id:
        return WeightSource(name, 'gdrive', weight.original, cache_dir)
    if hub_id:  # a cfg naming only a Hub repo that is neither cached nor published
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    raise PretrainedWeightsError(
        f'No pretrained weights are released for {name} (the authors published none); use pretrained=False, '
        'or pass your own checkpoint with `pretrained_cfg_overlay=dict(file=PATH)`.',
        f'No pretrained weights are released for {name}; drop --pretrained, or pass your own with --checkpoint PATH.')


def prepare_pretrained(variant: str, kwargs: dict, filter_fn: FilterFn) -> Tuple[ContextManager, FilterFn]:
    """ Set up a `build_model_with_cfg(..., pretrained=True, **kwargs)` call of a FAN model.

    Chooses the source (`resolve_weight_source`), fetches what must exist first (the converted Drive copy), points
    `kwargs['pretrained_cfg_overlay']` at it, and returns the context that turns failures into clear errors and the
    checked filter (finite values always; strict keys and shapes unless `pretrained_strict=False`).
    """
    cfg = resolve_pretrained_cfg(variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay'))
    source = resolve_weight_source(variant, cfg.to_dict(), kwargs.get('cache_dir'))
    with source.loading():
        overlay = source.fetch()
    kwargs['pretrained_cfg_overlay'] = {**(kwargs.get('pretrained_cfg_overlay') or {}), **overlay}
    return source.loading(), checked_filter(filter_fn, strict=kwargs.get('pretrained_strict', True))


def registered_filter_fn(model: torch.nn.Module) -> FilterFn:
    """ The `checkpoint_filter_fn(state_dict, model)` of the module defining `model` (timm's convention: fan models
    map official checkpoints with it), or the identity for modules without one. """
    filter_fn = getattr(importlib.import_module(type(model).__module__), 'checkpoint_filter_fn', None)
    return filter_fn or (lambda state_dict, _model: state_dict)


def load_weights_file(model: torch.nn.Module, path: Union[str, Path], filter_fn: Optional[FilterFn] = None) -> None:
    """ Load a checkpoint file into `model` with the checks and messages of `pretrained_cfg_overlay=dict(file=...)`.

    For callers that already built the model (token-label teachers, `eval --checkpoint`): no pickled code runs, a
    missing / truncated / unsafe file, non-finite weights and a checkpoint of another architecture (with the fitting
    one named) each give their `PretrainedWeightsError`.
    """
    filter_fn = filter_fn or registered_filter_fn(model)
    state_dict, _ = read_checkpoint(path)
    model.load_state_dict(filter_and_check(state_dict, model, filter_fn), strict=True)


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
    matches = []
    classifier = set(_classifier_keys(('head', 'aux_head')))
    for name in list_models('fan*'):
        model = _meta_model(name)
        found, expected = _shapes(filter_fn(dict(state_dict), model)), _shapes(model.state_dict())
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
    message = (f'The checkpoint does not fit {arch}:' + listing('missing keys', missing)
               + listing('unexpected keys', unexpected) + listing('wrong shapes', mismatched) + hint)
    raise WeightsMismatchError(message, message.replace('(num_classes=', '(--num-classes '))


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
