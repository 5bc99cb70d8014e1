"""Publish the authors' released weights as `fan-stl/<architecture>.<tag>` Hub repos (for maintainers).

For each released weight: fetch the original from the authors' source (GitHub release URL, or Google Drive through
the converted and sha256-checked cache of `fan_stl.weights.drive`), record its sha256, convert and verify it (strict
load, finite sanity forward, bit-identical reload, parameter count of the written file equal to the card's),
optionally measure its ImageNet top-1 with the model's own eval transform next to the reported number, write the
card with the authors' numbers and licence, and push exactly the files written. A repo whose card already records
the same original sha256 is skipped, so an interrupted run simply resumes. Once a repo exists, `pretrained=True`
uses it by itself (`fan_stl.weights.sources`). Arguments are checked (`check_verify_folder`) before anything is
fetched.
"""
import fnmatch
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Tuple

import torch
from safetensors import safe_open

import timm

from .convert import CARD_FILE, HUB_WEIGHTS_FILE, ConversionError, ConversionResult, convert_state_dict, push_to_hub
from .drive import fetch_authors_copy
from .files import read_checkpoint, read_safetensors_metadata, sha256_of
from .network import offline, offline_switch
from .released import RELEASED_WEIGHTS, ReleasedWeight
from .sources import url_cached_file

__all__ = ['PublishRecord', 'select_weights', 'check_verify_folder', 'fetch_original', 'publish_weight',
           'published_sha256']

_CARD_SHA = re.compile(r'Original file sha256:\*\* ([0-9a-f]{64})')


@dataclass
class PublishRecord:
    """ What happened to one released weight. """
    weight: ReleasedWeight
    status: str  # 'pushed', 'dry-run', 'up to date'
    sha256: str
    conversion: Optional[ConversionResult] = None
    top1: Optional[Tuple[float, int]] = None  # measured top-1 % and the number of images

    def line(self) -> str:
        text = f'{self.weight.name:<40} {self.status:<10} original sha256 {self.sha256[:16]}...'
        if self.conversion is not None:
            ours = self.conversion.num_params / 1e6
            text += f'  {ours:.2f}M params (authors print {self.weight.reported_params})'
        if self.top1 is not None:
            reported = '–' if self.weight.top1 is None else f'{self.weight.top1:.1f}'
            text += f'  top-1 {self.top1[0]:.2f}% on {self.top1[1]} images (reported {reported}%)'
        return text


def select_weights(only: Optional[str] = None) -> List[ReleasedWeight]:
    """ The released weights whose `architecture.tag` matches the glob `only` (all when None). """
    chosen = [w for w in RELEASED_WEIGHTS if only is None or fnmatch.fnmatch(w.name, only)]
    if not chosen:
        names = ', '.join(w.name for w in RELEASED_WEIGHTS)
        raise ConversionError(f"--only {only!r} matches no released weight; released: {names}.")
    return chosen


def check_verify_folder(verify_imagenet: Optional[Path]) -> None:
    """ Refuse a `--verify-imagenet` folder that does not exist, before any download or conversion. """
    if verify_imagenet is not None and not Path(verify_imagenet).is_dir():
        raise ConversionError(f'--verify-imagenet {verify_imagenet}: no such folder. Give the ImageNet val '
                              'ImageFolder (1000 class folders), or drop --verify-imagenet.')


def fetch_original(weight: ReleasedWeight) -> Tuple[Path, str]:
    """ A readable copy of the authors' file and the sha256 of the original as the authors publish it.

    A converted Drive copy is checked against its sha256 record first (`fetch_authors_copy`): a copy changed after
    it was written is refused, never published.
    """
    if weight.drive_id:
        path = fetch_authors_copy(weight)  # converted once; named and tagged with the original's sha256
        return path, read_safetensors_metadata(path)['sha256']
    path = url_cached_file(weight.direct_url)
    if not path.is_file():
        if offline():
            raise ConversionError(f"{weight.name}: the authors' file is not cached ({path}) and {offline_switch()} "
                                  f'forbids downloading {weight.direct_url}. Unset it while online.')
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weight.direct_url, str(path), progress=True)  # temp file, then moved
    return path, sha256_of(path)


def published_sha256(repo_id: str) -> Optional[str]:
    """ The original sha256 recorded in the card of the Hub repo `repo_id`, or None if it has none (or no repo). """
    from huggingface_hub import HfApi
    try:
        card = Path(HfApi(library_name='fan_stl').hf_hub_download(repo_id, CARD_FILE)).read_text(encoding='utf-8')
    except Exception:  # no repo yet, no card, or no network: publishing is then needed (and will say why it fails)
        return None
    found = _CARD_SHA.search(card)
    return found.group(1) if found else None


def _file_params(path: Path, model: torch.nn.Module) -> int:
    """ Number of parameters (not buffers) of `model` that the safetensors file at `path` holds. """
    names = {name for name, _ in model.named_parameters()}
    with safe_open(str(path), framework='pt') as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys() if k in names)


def imagenet_top1(model: torch.nn.Module, root: Path, limit: Optional[int] = None, batch_size: int = 64,
                  progress: Callable[[Iterator], Iterator] = iter) -> Tuple[float, int]:
    """ Top-1 % of `model` on an ImageNet val ImageFolder, with the model's own eval transform (`limit`: an even
    subset of that many images). """
    config = timm.data.resolve_data_config(model=model)
    try:
        dataset = timm.data.create_dataset('', root=str(root), transform=timm.data.create_transform(**config))
    except (RuntimeError, OSError) as e:
        raise ConversionError(f'--verify-imagenet {root}: {e}') from None
    if len(dataset.reader.class_to_idx) != model.num_classes:
        raise ConversionError(f'{root} has {len(dataset.reader.class_to_idx)} class folders; the model predicts '
                              f'{model.num_classes} classes. Give the ImageNet val folder (1000 class folders).')
    indices = list(range(len(dataset)))
    if limit is not None and limit < len(indices):
        step = len(indices) / limit
        indices = [int(i * step) for i in range(limit)]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size,
                                         num_workers=min(8, os.cpu_count() or 1))
    correct = 0
    model.eval()
    with torch.no_grad():
        for images, targets in progress(loader):
            correct += (model(images).argmax(-1) == targets).sum().item()
    return 100. * correct / max(1, len(indices)), len(indices)


def publish_weight(
        weight: ReleasedWeight,
        work_dir: Path,
        dry_run: bool = False,
        private: bool = False,
        verify_imagenet: Optional[Path] = None,
        limit: Optional[int] = None,
        sanity_size: Optional[int] = None,
) -> PublishRecord:
    """ Fetch, convert, verify, write and (unless `dry_run`) push one released weight; see the module docstring. """
    check_verify_folder(verify_imagenet)
    path, sha256 = fetch_original(weight)
    if not dry_run and published_sha256(weight.hub_repo) == sha256:
        return PublishRecord(weight, 'up to date', sha256)
    state_dict, picked = read_checkpoint(path)
    result = convert_state_dict(
        state_dict, weight.architecture, Path(work_dir) / weight.name, picked=picked, source_sha256=sha256,
        release=weight, img_size=sanity_size, repo_id=weight.hub_repo, overwrite=True)
    model = timm.create_model(weight.name).eval()
    file_params = _file_params(result.out_dir / HUB_WEIGHTS_FILE, model)
    card = (result.out_dir / CARD_FILE).read_text(encoding='utf-8')
    if file_params != result.num_params or f'{result.num_params:,} parameters' not in card:
        raise ConversionError(f'{weight.name}: the written file holds {file_params:,} parameters, the card states '
                              f'{result.num_params:,}; nothing is published.')
    record = PublishRecord(weight, 'dry-run' if dry_run else 'pushed', sha256, result)
    if verify_imagenet is not None:
        model.load_state_dict(read_checkpoint(result.out_dir / HUB_WEIGHTS_FILE)[0])
        record.top1 = imagenet_top1(model, Path(verify_imagenet), limit)
    if not dry_run:
        push_to_hub(result.out_dir, weight.hub_repo, private=private, files=result.files,
                    commit_message=f'fan_stl publish: {weight.name} from {weight.original} (sha256 {sha256})')
    return record
