"""Where `create_model(name, pretrained=True)` takes a FAN / STL weight from, and loading it with one clear message.

Every released weight has a Hugging Face Hub repo `fan-stl/<architecture>.<tag>` once a maintainer publishes it
(`python -m fan_stl publish`). `resolve_weight_source` picks the first source that applies, preferring what needs
no network (tested in tests/weights/test_sources.py):

1. what the call names explicitly: an `hf-hub:` / `local-dir:` model name, or `pretrained_cfg_overlay` with
   `state_dict=` or `file=` (an official `.pth.tar` is converted on load by `checkpoint_filter_fn`);
2. a copy already on this machine: the Hub copy in the local Hugging Face cache (huggingface_hub's cache lookup),
   then the authors' file as downloaded before (timm's copy of a FAN release URL, or the converted and checked
   copy of an STL Google Drive file, see `fan_stl.weights.drive`);
3. online only: the Hub copy, downloaded as timm does (after one quick check that the Hub answers); a repo that is
   not published yet falls through to
4. the authors' own source, converted on load: the FAN GitHub release URL (timm downloads it) or, for the STL
   weights, the authors' Google Drive.

No source makes a request of its own beyond the download it needs. Offline (`HF_HUB_OFFLINE=1` or
`FAN_STL_OFFLINE=1`) only steps 1-2 apply and nothing is requested from anywhere; a weight that is not on this
machine is one error naming what was looked for. `set_pretrained_hook` installs `pretrained_hook` into
`fan_stl.models.fan` when `fan_stl.weights` is imported (the model file does not import this layer).
`create_pretrained` gives any timm model (`hf-hub:` names, annotator teachers) the same offline rule and message.
"""
import os
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import ContextManager, Dict, Iterator, Mapping, Optional, Tuple
from urllib.error import URLError

import torch
from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

import timm
from timm.models import get_pretrained_cfg, list_pretrained, resolve_pretrained_cfg

from fan_stl.models import fan as fan_models

from .checkpoint import FilterFn, checked_filter
from .drive import fetch_authors_copy, has_authors_copy
from .files import SAFE_CHECKPOINT_GLOBALS, PretrainedWeightsError, read_checkpoint, unreadable_file_error
from .network import hub_offline, hub_unreachable, offline, offline_switch
from .released import released_weight, weight_error

__all__ = ['HUB_WEIGHTS_FILE', 'WeightSource', 'resolve_weight_source', 'hub_cached_file', 'url_cached_file',
           'download_from_hub', 'prepare_pretrained', 'pretrained_hook', 'check_pretrained_tag', 'create_pretrained',
           'weight_availability']

HUB_WEIGHTS_FILE = 'model.safetensors'
_NOT_PUBLISHED = (RepositoryNotFoundError, RevisionNotFoundError, EntryNotFoundError, GatedRepoError)


class HubUnreachable(OSError):
    """ The Hub endpoint did not answer the one connection `download_from_hub` opens first. """


def hub_cached_file(repo: str, cache_dir: Optional[str] = None) -> Optional[Path]:
    """ The cached `model.safetensors` of the Hub repo `ORG/NAME[@revision]`, found without any request, or None. """
    repo_id, _, revision = repo.partition('@')
    cached = try_to_load_from_cache(repo_id, HUB_WEIGHTS_FILE, cache_dir=cache_dir, revision=revision or None)
    return Path(cached) if isinstance(cached, str) else None


def url_cached_file(url: str) -> Path:
    """ Where timm (torch.hub) keeps its download of a release URL; it is read from there without a request. """
    return Path(torch.hub.get_dir()) / 'checkpoints' / os.path.basename(url)


def download_from_hub(repo: str, cache_dir: Optional[str] = None) -> Path:
    """ Download `model.safetensors` of the Hub repo `ORG/NAME[@revision]` as timm would; tests replace this.

    Raises `HubUnreachable` at once when the Hub endpoint does not answer, instead of huggingface_hub's retries.
    """
    reason = hub_unreachable()
    if reason is not None:
        raise HubUnreachable(reason)
    repo_id, _, revision = repo.partition('@')
    return Path(hf_hub_download(repo_id, HUB_WEIGHTS_FILE, revision=revision or None, cache_dir=cache_dir,
                                library_name='fan_stl'))


@dataclass(frozen=True)
class WeightSource:
    """ The source `create_model(..., pretrained=True)` loads from, chosen by `resolve_weight_source`. """
    name: str  # `architecture.tag` being loaded
    kind: str  # one of 'hf-hub', 'local-dir', 'state_dict', 'file', 'url', 'gdrive'
    location: str
    cache_dir: Optional[str] = None
    chosen: bool = False  # True when the package chose this source (a registered weight), not the caller
    fallback: Optional['WeightSource'] = field(default=None, compare=False)  # the authors' source behind a Hub copy

    def fetch(self) -> Dict[str, Optional[str]]:
        """ Get what must exist before the model is built; return the cfg overlay that makes timm load from it. """
        if self.kind == 'gdrive':
            path = fetch_authors_copy(released_weight(self.name))
            return {'hf_hub_id': None, 'url': None, 'file': str(path)}
        if self.kind == 'url':
            if not url_cached_file(self.location).is_file() and offline():
                raise weight_error(
                    f'Weights for {self.name} are not cached (looked for the Hub copy in the Hugging Face cache and '
                    f"the authors' file at {url_cached_file(self.location)}) and {offline_switch()} forbids "
                    f'downloading them from {self.location}. Unset it while online.', self.name)
            return {'hf_hub_id': None}  # torch.hub reads its cached copy, or downloads (no retries) with a bar
        if self.kind == 'hf-hub' and self.chosen:
            return self._fetch_hub_copy()
        if self.kind == 'file' and not Path(self.location).is_file():
            raise PretrainedWeightsError(f'Checkpoint {self.location} does not exist or is not a file.')
        return {}

    def _fetch_hub_copy(self) -> Dict[str, Optional[str]]:
        """ The cached Hub copy, or online its download; a repo not published (or no Hub) falls to the authors. """
        path = hub_cached_file(self.location, self.cache_dir)
        if path is None:
            try:
                path = download_from_hub(self.location, self.cache_dir)
            except (*_NOT_PUBLISHED, HubUnreachable, LocalEntryNotFoundError, OfflineModeIsEnabled):
                if self.fallback is None:
                    raise
                return self.fallback.fetch()
        return {'hf_hub_id': None, 'url': None, 'file': str(path)}

    @contextmanager
    def loading(self) -> Iterator[None]:
        """ Context for loading from this source: official training dicts (with their `argparse.Namespace`) load
        without executing other pickled code, huggingface_hub stays offline under `FAN_STL_OFFLINE`, and a failure is
        re-raised as a `PretrainedWeightsError` with the fix.
        """
        try:
            with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS), hub_offline():
                yield
        except PretrainedWeightsError:
            raise
        except Exception as e:
            translated = self._translate(e)
            if translated is None:
                raise
            raise translated from None

    def _translate(self, error: Exception) -> Optional[PretrainedWeightsError]:
        if isinstance(error, (LocalEntryNotFoundError, OfflineModeIsEnabled, HubUnreachable)):
            why = f'{offline_switch()} is set' if offline() else 'the Hub cannot be reached'
            return weight_error(f'Weights for {self.name} are not in the local Hugging Face cache (repo '
                                f'{self.location}) and {why}.', self.name)
        if isinstance(error, _NOT_PUBLISHED):
            return weight_error(f'Weights for {self.name}: the Hub repo {self.location} (or its {HUB_WEIGHTS_FILE}) '
                                'does not exist.', self.name)
        path = self._file()
        unreadable = unreadable_file_error(error, path, f'Weights for {self.name}: {path or self._where()}')
        if unreadable is not None:
            return unreadable
        if isinstance(error, URLError):
            return weight_error(f'Weights for {self.name}: downloading {self.location} failed ({error.reason}).',
                                self.name)
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
            return hub_cached_file(self.location, self.cache_dir)
        if self.kind == 'url':
            cached = url_cached_file(self.location)
            return cached if cached.is_file() else None
        return None

    def _where(self) -> str:
        return f'the weight file of {self.location}'


def _authors_source(name: str, url: Optional[str], cache_dir: Optional[str]) -> Optional[WeightSource]:
    weight = released_weight(name)
    if url:
        return WeightSource(name, 'url', url, cache_dir)
    if weight is not None and weight.drive_id:
        return WeightSource(name, 'gdrive', weight.original, cache_dir)
    return None


def _authors_copy_cached(source: Optional[WeightSource]) -> bool:
    if source is None:
        return False
    if source.kind == 'url':
        return url_cached_file(source.location).is_file()
    return has_authors_copy(released_weight(source.name))  # checked (and set aside if broken) when fetched


def resolve_weight_source(
        variant: str,
        pretrained_cfg: Optional[Mapping] = None,
        cache_dir: Optional[str] = None,
) -> WeightSource:
    """ Choose where `create_model(variant, pretrained=True)` loads from, in the order of the module docstring.

    Makes no network request: what is on this machine is looked up in the caches; the Hub is asked (online) only
    when the returned source is fetched.

    Args:
        variant: Registered architecture name.
        pretrained_cfg: The resolved pretrained cfg (registry cfg of the tag, with any overlay applied).
        cache_dir: Hugging Face cache directory override (`create_model(cache_dir=...)`).
    """
    cfg = dict(pretrained_cfg or {})
    name = f"{variant}.{cfg['tag']}" if cfg.get('tag') else variant
    hub_id = cfg.get('hf_hub_id')
    if cfg.get('source') == 'hf-hub':
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    if cfg.get('source') == 'local-dir':
        return WeightSource(name, 'local-dir', cfg.get('file'), cache_dir)
    if cfg.get('state_dict'):
        return WeightSource(name, 'state_dict', '<state_dict>', cache_dir)
    if cfg.get('file'):
        return WeightSource(name, 'file', cfg['file'], cache_dir)
    authors = _authors_source(name, cfg.get('url'), cache_dir)
    if hub_id and hub_cached_file(hub_id, cache_dir) is not None:
        return WeightSource(name, 'hf-hub', hub_id, cache_dir, chosen=True)
    if _authors_copy_cached(authors):
        return authors
    if hub_id and not offline():
        return WeightSource(name, 'hf-hub', hub_id, cache_dir, chosen=True, fallback=authors)
    if authors is not None:
        return authors
    if hub_id:  # a cfg naming only a Hub repo, offline and not cached
        return WeightSource(name, 'hf-hub', hub_id, cache_dir)
    raise PretrainedWeightsError(
        f'No pretrained weights are released for {name} (the authors published none); use pretrained=False, '
        'or pass your own checkpoint with `pretrained_cfg_overlay=dict(file=PATH)`.',
        f'No pretrained weights are released for {name}; drop --pretrained, or pass your own with --checkpoint PATH.')


def prepare_pretrained(variant: str, kwargs: dict, filter_fn: FilterFn) -> Tuple[ContextManager, FilterFn]:
    """ Set up a `build_model_with_cfg(..., pretrained=True, **kwargs)` call of a FAN model.

    Chooses the source (`resolve_weight_source`), fetches what must exist first (a Hub copy, the converted Drive
    copy), points `kwargs['pretrained_cfg_overlay']` at it, and returns the context that turns failures into clear
    errors and the checked filter (finite values always; strict keys and shapes unless `pretrained_strict=False`).
    """
    cfg = resolve_pretrained_cfg(variant, kwargs.get('pretrained_cfg'), kwargs.get('pretrained_cfg_overlay'))
    source = resolve_weight_source(variant, cfg.to_dict(), kwargs.get('cache_dir'))
    with source.loading():
        overlay = source.fetch()
    kwargs['pretrained_cfg_overlay'] = {**(kwargs.get('pretrained_cfg_overlay') or {}), **overlay}
    return source.loading(), checked_filter(filter_fn, strict=kwargs.get('pretrained_strict', True))


def check_pretrained_tag(variant: str, tag: str) -> None:
    """ Raise a clear `PretrainedWeightsError` when `tag` is not registered for `variant`. """
    try:
        get_pretrained_cfg(f'{variant}.{tag}')
    except RuntimeError:
        known = ', '.join(list_pretrained(f'{variant}.*')) or 'none'
        raise PretrainedWeightsError(
            f"Unknown pretrained tag '{tag}' for {variant}. Weights registered for it: {known}. "
            "`timm.list_pretrained('fan*')` lists every FAN / STL weight.") from None


def pretrained_hook(variant: str, pretrained: bool, kwargs: dict, filter_fn: FilterFn) -> Tuple[ContextManager,
                                                                                              FilterFn]:
    """ What `fan_stl.models.fan` calls before building a model: an unknown tag is refused; with `pretrained`,
    the weights are found and fetched (`prepare_pretrained`). """
    tag = kwargs.get('pretrained_cfg')
    if isinstance(tag, str) and tag:  # '' is timm's "default tag" (e.g. from a deprecated name)
        check_pretrained_tag(variant, tag)
    if not pretrained:
        return nullcontext(), filter_fn
    return prepare_pretrained(variant, kwargs, filter_fn)


def _is_fan(model_name: str) -> bool:
    module = fan_models.__name__.split('.')[-1]  # timm registers models by the last part of their module's name
    return ':' not in model_name and timm.models.is_model_in_modules(model_name.split('.')[0], [module])


def create_pretrained(model_name: str, **kwargs) -> torch.nn.Module:
    """ `timm.create_model(model_name, pretrained=True, **kwargs)` for any timm model, with the offline rule of this
    module: a copy in the local cache is used without any request; otherwise, online, one quick check that the Hub
    answers, then timm's download. Weights that cannot be had give one `PretrainedWeightsError`.
    """
    if _is_fan(model_name):
        return timm.create_model(model_name, pretrained=True, **kwargs)  # the FAN hook applies this order itself
    try:
        with hub_offline(force=True):  # the local cache first: no request
            return timm.create_model(model_name, pretrained=True, **kwargs)
    except (LocalEntryNotFoundError, OfflineModeIsEnabled):
        pass
    fix = 'load it once while online, or pass a checkpoint file instead (--checkpoint / a file path).'
    if offline():
        raise PretrainedWeightsError(f'The pretrained weights of {model_name} are not in the local Hugging Face '
                                     f'cache and {offline_switch()} forbids downloading them: {fix}')
    reason = hub_unreachable()
    if reason is not None:
        raise PretrainedWeightsError(f'The pretrained weights of {model_name} are not in the local Hugging Face '
                                     f'cache and the Hub cannot be reached ({reason}): {fix}')
    try:
        return timm.create_model(model_name, pretrained=True, **kwargs)
    except (LocalEntryNotFoundError, *_NOT_PUBLISHED) as e:
        raise PretrainedWeightsError(f'The pretrained weights of {model_name} could not be downloaded from the Hub '
                                     f'({type(e).__name__}: {str(e).splitlines()[0][:200]}).') from None


def weight_availability(name: str) -> str:
    """ Where weight `name` (`architecture.tag`) can be had now, found without any network request: 'cached Hub
    copy', "cached authors' file", 'not cached, offline', or which download it needs. """
    cfg = get_pretrained_cfg(name)
    if cfg.hf_hub_id and hub_cached_file(cfg.hf_hub_id) is not None:
        return 'cached Hub copy'
    authors = _authors_source(name, cfg.url, None)
    if _authors_copy_cached(authors):
        return "cached authors' file"
    if offline():
        return 'not cached, offline'
    return "needs network: Hub, else authors' " + ('URL' if authors is not None and authors.kind == 'url' else 'Drive')
