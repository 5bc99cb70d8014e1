"""Weight files: reading them without running their code, writing them atomically, and their sha256 records.

Every loading path of the package (`pretrained_cfg_overlay=dict(file=...)`, the Google Drive and Hub copies,
`convert`, `publish`, token-label teachers, `eval --checkpoint`) reads files through `read_checkpoint` or reports a
failure with `unreadable_file_error`, so one bad file gets one message, whichever way it was loaded:

* a pickle that torch's `weights_only` loader refuses (a global such as `os.system`, or a pickle feature it does not
  accept) is reported as holding code that was not executed, never as truncated or corrupt;
* a truncated zip / pickle / safetensors file is reported as truncated or corrupt, with the fix;
* a file that holds a list, a dict of non-tensors or non-finite weights is refused with what it holds.

Files the package converts and keeps (the authors' Google Drive copies) get a record of their own sha256 beside
them (`record_sha256`), checked before each use (`check_sha256_record`): a copy changed after it was written is
refused, never loaded or published silently.
"""
import argparse
import hashlib
import pickle
import re
import zipfile
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..utils.atomic import atomic_path, give_usual_mode, write_text_atomic

__all__ = [
    'PretrainedWeightsError', 'WeightsMismatchError', 'UnsafeCheckpointError', 'SAFE_CHECKPOINT_GLOBALS',
    'TRAINING_DICT_KEYS', 'read_checkpoint', 'pick_state_dict', 'check_state_dict', 'unreadable_file_error',
    'sha256_of', 'save_safetensors_atomic', 'read_safetensors_metadata', 'SHA256_SUFFIX', 'record_sha256',
    'check_sha256_record',
]

# The only non-tensor object official training checkpoints hold (their `args`); nothing else is unpickled.
SAFE_CHECKPOINT_GLOBALS = [argparse.Namespace]
TRAINING_DICT_KEYS = ('state_dict_ema', 'model_ema', 'state_dict', 'model')  # EMA first, as the authors evaluate
_TORCH_REFUSAL = 'Weights only load failed'  # how torch's weights_only errors begin (torch 2.4 ... 2.14)
_GLOBAL_NAME = re.compile(r'GLOBAL (\S+?)(?:\s|$)')


class PretrainedWeightsError(RuntimeError):
    """ Pretrained weights could not be found, read or loaded; the message says which and how to fix it.

    `cli_message` is the same message with fixes spelled as command-line flags (`--checkpoint PATH`) instead of
    Python keyword arguments; the CLI prints it.
    """

    def __init__(self, message: str, cli_message: Optional[str] = None):
        super().__init__(message)
        self.cli_message = cli_message or message


class WeightsMismatchError(PretrainedWeightsError):
    """ A checkpoint does not fit the architecture it is loaded into. """


class UnsafeCheckpointError(PretrainedWeightsError):
    """ A pickle holds code or objects that torch's `weights_only` loader refuses; nothing in it was executed. """


def _refusal(error: BaseException) -> Optional[pickle.UnpicklingError]:
    """ torch's `weights_only` refusal in `error` or its chain (timm re-raises it as a RuntimeError), else None. """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, pickle.UnpicklingError) and str(error).startswith(_TORCH_REFUSAL):
            return error
        error = error.__cause__ or error.__context__
    return None


def _unsafe_globals(path: Optional[Union[str, Path]], refusal: pickle.UnpicklingError) -> str:
    names = []
    if path is not None and Path(path).is_file():
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # the file may be a legacy pickle, which this helper cannot scan; fall back to the message
            names = []
    names = [n for n in names if n != 'argparse.Namespace'] or _GLOBAL_NAME.findall(str(refusal))
    return ', '.join(dict.fromkeys(names))


def unreadable_file_error(
        error: BaseException, path: Optional[Union[str, Path]], where: str,
) -> Optional[PretrainedWeightsError]:
    """ The error to raise for a weight file that could not be read, or None when `error` is not about its content.

    Args:
        error: What reading raised (torch's, timm's or safetensors' exception, possibly chained).
        path: The file, when known: it names the refused globals exactly.
        where: How the message names the file (its path, or e.g. "Weights for NAME: the cached copy of REPO").
    """
    refusal = _refusal(error)
    names = _unsafe_globals(path, refusal) if refusal is not None else ''
    if names:
        return UnsafeCheckpointError(
            f'{where} holds code / unsupported global {names}; not executed (torch.load weights_only=True refused '
            'it). Official FAN / STL checkpoints hold only tensors and argparse.Namespace. If you trust the file, '
            're-save its tensors in a Python session of your own and load those; this package never unpickles code.')
    if refusal is not None:  # torch's safe loader met bytes that are no pickle instruction it knows: not a checkpoint
        reason = [line for line in str(refusal).splitlines() if line.strip()][-2].strip()
        return PretrainedWeightsError(
            f'{where} is truncated, corrupt or not a torch checkpoint (torch.load weights_only=True: {reason[:200]}). '
            'Nothing in it was executed. Delete it and download or convert it again.')
    corrupt = (SafetensorError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError)
    if isinstance(error, corrupt) or (isinstance(error, RuntimeError) and 'PytorchStreamReader' in str(error)):
        return PretrainedWeightsError(
            f'{where} is truncated or corrupt ({type(error).__name__}: {str(error)[:200]}). '
            'Delete it and download or convert it again.')
    return None


def pick_state_dict(checkpoint: Mapping, use_ema: bool = True) -> Tuple[Mapping, str]:
    """ The weights inside a flat state dict or a training dict, and which key they came from ('flat' if none). """
    keys = TRAINING_DICT_KEYS if use_ema else TRAINING_DICT_KEYS[2:]
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key], key
    nested = [k for k in TRAINING_DICT_KEYS if isinstance(checkpoint.get(k), Mapping)]
    if nested:
        raise PretrainedWeightsError(
            f'The checkpoint holds only {", ".join(nested)}, no raw (non-EMA) weights: load it with EMA weights '
            '(drop --no-ema / use_ema=False).')
    return checkpoint, 'flat'


def check_state_dict(state_dict: object, where: str) -> Dict[str, torch.Tensor]:
    """ Return `state_dict` as a dict if it maps names to finite tensors; else raise a `PretrainedWeightsError`. """
    if not isinstance(state_dict, Mapping):
        raise PretrainedWeightsError(
            f'{where} holds a {type(state_dict).__name__}, not a state dict or a training checkpoint (a dict of '
            f'tensors, or a dict with one of {", ".join(TRAINING_DICT_KEYS)}).')
    non_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise PretrainedWeightsError(
            f'{where} is not a state dict: entries {non_tensors[:5]} are not tensors. Expected a flat state dict or '
            f'a training dict with one of {", ".join(TRAINING_DICT_KEYS)}.')
    non_finite = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if non_finite:
        raise PretrainedWeightsError(
            f'{where} holds NaN / Inf values in {len(non_finite)} tensors ({", ".join(non_finite[:5])}); such '
            'weights give meaningless outputs and are refused. Use an earlier checkpoint of the run.')
    return dict(state_dict)


def read_checkpoint(path: Union[str, Path], use_ema: bool = True) -> Tuple[Dict[str, torch.Tensor], str]:
    """ Read a checkpoint's tensors without executing pickled code.

    Args:
        path: A `.safetensors` file or a torch checkpoint (`.pth`, `.pth.tar`, `.bin`): flat, or a training dict with
            `state_dict_ema` / `model_ema` / `state_dict` / `model` and an `argparse.Namespace` of `args`.
        use_ema: Prefer the EMA weights when the checkpoint holds both.

    Returns:
        The state dict (names to finite tensors) and which part of the file it came from.

    Raises:
        PretrainedWeightsError: missing file, unsafe pickle (`UnsafeCheckpointError`), truncated file, or content
            that is not a state dict of finite tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise PretrainedWeightsError(f'Checkpoint {path} does not exist or is not a file.')
    try:
        if path.suffix == '.safetensors':
            checkpoint = load_file(path)
        else:
            with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
                checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        error = unreadable_file_error(e, path, str(path))
        if error is None:
            raise
        raise error from None
    if not isinstance(checkpoint, Mapping):
        check_state_dict(checkpoint, str(path))
    state_dict, picked = pick_state_dict(checkpoint, use_ema)
    where = f'{path}' if picked == 'flat' else f'{path} ({picked})'
    return check_state_dict(state_dict, where), picked


def sha256_of(path: Union[str, Path]) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def save_safetensors_atomic(
        state_dict: Mapping[str, torch.Tensor], path: Union[str, Path], metadata: Optional[Dict[str, str]] = None,
) -> Path:
    """ Write `state_dict` to `path` via a temp file in the same folder and `os.replace`: never a partial file. """
    tensors = {k: v.detach().contiguous().clone() for k, v in state_dict.items()}  # no shared storage (q/k/v views)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        give_usual_mode(tmp)  # safetensors writes owner-only; a weights file is as readable as the others
    return Path(path)


SHA256_SUFFIX = '.sha256'  # the record of a kept file's own sha256: `<file>.sha256`, one hex line


def record_sha256(path: Union[str, Path], digest: Optional[str] = None) -> str:
    """ Write `digest` (default: the sha256 of `path`) into `<path>.sha256`, atomically, and return it. """
    digest = digest or sha256_of(path)
    write_text_atomic(Path(f'{path}{SHA256_SUFFIX}'), digest + '\n')
    return digest


def check_sha256_record(path: Union[str, Path]) -> Optional[str]:
    """ None when `path` has the sha256 recorded when it was written; otherwise what is wrong with it. """
    record = Path(f'{path}{SHA256_SUFFIX}')
    if not record.is_file():
        return f'it has no record of its sha256 ({record.name})'
    recorded = record.read_text().strip()
    actual = sha256_of(path)
    if actual != recorded:
        return f'its sha256 {actual} differs from the one recorded when it was written ({recorded})'
    return None


def read_safetensors_metadata(path: Union[str, Path]) -> Dict[str, str]:
    """ The string metadata of a safetensors file ({} when it has none or cannot be read). """
    try:
        with safe_open(str(path), framework='pt') as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError):
        return {}
