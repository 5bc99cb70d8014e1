"""The stored label-map format written by `fan_stl label` and read by the `maps` label source.

A maps folder holds, for every image of a training set's file list (in the dataset's order):

* `shard-00000.safetensors`, ...: `indices (n, k, S_h, S_w)` int16 (the teacher's top-k classes at each cell of its
  score map on the full image) and `log_probs (n, k, S_h, S_w)` fp16 (their log-probabilities: logits minus the
  logsumexp over all classes, so the mass outside the top-k is known); the safetensors metadata names the run and
  the rows (`start`, `count`) of the shard;
* `files.txt`: the file list, one `relative/path<TAB>bytes` line per image;
* `index.json`, written last, once every shard is complete: `format_version`, the dataset `fingerprint` (sha256 of
  `files.txt` plus the class folders), `num_images`, `classes`, the `teacher` (spec, architecture, class count,
  sha256 of its weights), the `settings` (image size, grid, k, interpolation, mean / std), the `versions` and the
  `shards` (name, start, count, bytes, sha256).

`MapStore(folder)` opens a finished folder (refusing an index from a newer format version, a missing or truncated
shard, by name), maps a training set's samples to rows (`rows_for`: another file list is one error naming both
fingerprints; images added since labelling are listed) and reads rows (`read`).
"""
import bisect
import hashlib
import json
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch.utils.data import Dataset

__all__ = ['FORMAT_VERSION', 'INDEX_NAME', 'FILES_NAME', 'MapStore', 'MapsError', 'dataset_files', 'fingerprint',
           'shard_name', 'sha256_file']

FORMAT_VERSION = 1
INDEX_NAME = 'index.json'
FILES_NAME = 'files.txt'
_SHOWN = 10  # added images listed in a message


class MapsError(ValueError):
    """ A maps folder that cannot label this training set (the message names the problem and the fix). """


def shard_name(number: int) -> str:
    return f'shard-{number:05d}.safetensors'


def sha256_file(path: os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def dataset_files(dataset: Dataset) -> Tuple[List[str], List[str], str]:
    """ `(files, classes, root)`: `relative/path<TAB>bytes` of every sample of a timm ImageFolder dataset (in its
    order), its class names and its folder. """
    reader = getattr(dataset, 'reader', None)
    samples = getattr(reader, 'samples', None)
    if samples is None:
        raise MapsError(f'Label maps need an image-folder dataset (timm\'s create_dataset of a folder); '
                        f'{type(dataset).__name__} lists no files.')
    root = str(reader.root)
    files = [f'{os.path.relpath(path, root)}\t{os.path.getsize(path)}' for path, _ in samples]
    classes = sorted(reader.class_to_idx, key=reader.class_to_idx.get)
    return files, classes, root


def fingerprint(files: Sequence[str], classes: Sequence[str]) -> str:
    """ sha256 of the file list (paths and sizes, in order) and the class folders. """
    return hashlib.sha256(('\n'.join(files) + '\n\n' + '\n'.join(classes)).encode('utf-8')).hexdigest()


class MapStore:
    """ A finished maps folder (see the module docstring). """

    def __init__(self, folder: os.PathLike):
        self.folder = Path(folder)
        index_path = self.folder / INDEX_NAME
        if not index_path.is_file():
            raise MapsError(
                f'{self.folder} has no {INDEX_NAME}: it is not a maps folder, or its labelling did not finish. Run '
                f'`python -m fan_stl label DATA --teacher SPEC --out {self.folder}` (it resumes where it stopped).')
        self.index = json.loads(index_path.read_text(encoding='utf-8'))
        version = self.index.get('format_version')
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise MapsError(
                f'{index_path} is label-map format version {version}, newer than this fan_stl reads '
                f'({FORMAT_VERSION}); upgrade fan_stl (pip install -U fan_stl) or label again with this version.')
        for shard in self.index['shards']:
            path = self.folder / shard['name']
            if not path.is_file():
                raise MapsError(f'Label-map shard {path} is missing ({shard["count"]} images, rows from '
                                f'{shard["start"]}); run `fan_stl label` again with the same options to rewrite it.')
            if path.stat().st_size != shard['bytes']:
                raise MapsError(f'Label-map shard {path} is truncated or changed ({path.stat().st_size} bytes, the '
                                f'index says {shard["bytes"]}); delete it and run `fan_stl label` again with the same '
                                f'options to rewrite it.')
        self.files = (self.folder / FILES_NAME).read_text(encoding='utf-8').splitlines()
        self._rows = {line.split('\t')[0]: row for row, line in enumerate(self.files)}
        self._starts = [shard['start'] for shard in self.index['shards']]
        self._cache: Dict[int, Tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def num_classes(self) -> int:
        return self.index['teacher']['num_classes']

    @property
    def fingerprint(self) -> str:
        return self.index['fingerprint']

    def rows_for(self, dataset: Dataset) -> List[int]:
        """ The map row of each sample of `dataset` (the labelled set or a subset of it). """
        files, classes, root = dataset_files(dataset)
        mine = fingerprint(files, classes)
        if mine == self.fingerprint:
            return list(range(len(files)))
        stored = set(self.files)
        added = [line.split('\t')[0] for line in files if line not in stored]
        if len(added) == len(files) or classes != self.index['classes']:
            raise MapsError(
                f'The label maps in {self.folder} were made for another dataset or file list (fingerprint '
                f'{self.fingerprint[:16]}, {self.index["num_images"]} images of {self.index.get("data", "?")}) than '
                f'the training set {root} (fingerprint {mine[:16]}, {len(files)} images); label this training set: '
                f'python -m fan_stl label DATA --teacher SPEC --out NEW_MAPS/.')
        if added:
            raise MapsError(
                f'{len(added)} training image(s) of {root} were added or changed after the labelling of '
                f'{self.folder}: {", ".join(added[:_SHOWN])}{", ..." if len(added) > _SHOWN else ""}; label again '
                f'(python -m fan_stl label ... --out NEW_MAPS/) or remove them.')
        return [self._rows[line.split('\t')[0]] for line in files]

    def _shard(self, number: int) -> Tuple[torch.Tensor, torch.Tensor]:
        if number not in self._cache:
            shard = self.index['shards'][number]
            path = self.folder / shard['name']
            try:
                if sha256_file(path) != shard['sha256']:
                    raise SafetensorError('its sha256 differs from the index')
                tensors = load_file(path)
            except (SafetensorError, OSError) as e:
                raise MapsError(f'Label-map shard {path} cannot be read ({e}); delete it and run `fan_stl label` '
                                f'again with the same options to rewrite it.') from e
            self._cache[number] = tensors['indices'].long(), tensors['log_probs'].float()
        return self._cache[number]

    def read(self, rows: Sequence[int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """ `(indices (B, k, S_h, S_w) int64, log_probs (B, k, S_h, S_w) fp32)` of map rows `rows`. """
        indices, log_probs = [], []
        for row in rows:
            number = bisect.bisect_right(self._starts, row) - 1
            shard_indices, shard_log_probs = self._shard(number)
            indices.append(shard_indices[row - self._starts[number]])
            log_probs.append(shard_log_probs[row - self._starts[number]])
        return torch.stack(indices), torch.stack(log_probs)

    def describe(self) -> str:
        settings = self.index['settings']
        return (f'{self.index["num_images"]} images, top-{settings["topk"]} on a {settings["grid"][0]}x'
                f'{settings["grid"][1]} grid, teacher {self.index["teacher"]["spec"]}')
