"""Convert an official FAN / STL checkpoint into a Hugging Face Hub repo folder, verify it, and optionally push it.

`convert_checkpoint` reads a flat or training-dict checkpoint without executing pickled code, maps it to our layout
(`checkpoint_filter_fn`), loads it strictly into the named architecture, checks a forward pass, and writes
`model.safetensors`, timm's `config.json` (via `save_for_hf`) and a model card `README.md`. The folder then loads with
`timm.create_model('local-dir:DIR', pretrained=True)` and, once pushed (`push_to_hub`), with `hf-hub:` names and
`pretrained=True`.
"""
import hashlib
import importlib
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

import timm
from timm.models import get_pretrained_cfg, is_model, save_for_hf
from timm.models._hub import generate_readme

from fan_stl.hub import (
    HUB_WEIGHTS_FILE,
    SAFE_CHECKPOINT_GLOBALS,
    PretrainedWeightsError,
    filter_and_check,
    released_weight,
)
from fan_stl.models.fan import checkpoint_filter_fn

__all__ = ['ConversionError', 'ConversionResult', 'load_checkpoint_file', 'convert_checkpoint', 'push_to_hub']

EMA_KEYS = ('state_dict_ema', 'model_ema')
RAW_KEYS = ('state_dict', 'model')

CITATIONS = {
    'fan': """@inproceedings{zhou2022understanding,
  title={Understanding The Robustness in Vision Transformers},
  author={Zhou, Daquan and Yu, Zhiding and Xie, Enze and Xiao, Chaowei and Anandkumar, Anima and Feng, Jiashi and Alvarez, Jose M},
  booktitle={International Conference on Machine Learning},
  year={2022}
}""",
    'stl': """@inproceedings{zhao2023fully,
  title={Fully Attentional Networks with Self-emerging Token Labeling},
  author={Zhao, Bingyin and Yu, Zhiding and Lan, Shiyi and Cheng, Yutao and Anandkumar, Anima and Lao, Yingjie and Alvarez, Jose M},
  booktitle={International Conference on Computer Vision},
  year={2023}
}""",
}


class ConversionError(PretrainedWeightsError):
    """ A checkpoint cannot be converted or published; the message names the problem and the fix. """


@dataclass
class ConversionResult:
    """ What `convert_checkpoint` wrote and checked. """
    model_name: str
    out_dir: Path
    picked: str  # which part of the checkpoint was converted ('state_dict_ema', 'state_dict', 'flat', ...)
    files: Dict[str, Tuple[int, str]] = field(default_factory=dict)  # file name -> (bytes, sha256)
    max_abs_diff: float = 0.  # logits of the written weights vs the loaded model (0 means bit-identical)

    def summary(self) -> str:
        lines = [
            f'Converted {self.picked} weights into {self.model_name} -> {self.out_dir}',
            f'Sanity forward: reloaded {HUB_WEIGHTS_FILE} reproduces the logits (max |diff| {self.max_abs_diff:.3g})',
        ]
        lines += [f'  {name:<18} {size / 2 ** 20:10.2f} MiB  sha256 {digest}' for name, (size, digest) in
                  self.files.items()]
        return '\n'.join(lines)


def _pick_weights(checkpoint: dict, use_ema: bool) -> Tuple[dict, str]:
    keys = (*EMA_KEYS, *RAW_KEYS) if use_ema else RAW_KEYS
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key], key
    nested = [k for k in (*EMA_KEYS, *RAW_KEYS) if isinstance(checkpoint.get(k), dict)]
    if nested:
        raise ConversionError(
            f'The checkpoint holds only {", ".join(nested)}, no raw (non-EMA) weights: drop --no-ema to convert them.')
    return checkpoint, 'flat'


def load_checkpoint_file(path: Union[str, Path], use_ema: bool = True) -> Tuple[Dict[str, torch.Tensor], str]:
    """ Read a checkpoint's tensors without executing pickled code.

    Args:
        path: A `.safetensors` file or a torch checkpoint (`.pth`, `.pth.tar`, `.bin`): flat, or a training dict with
            `state_dict_ema` / `model_ema` / `state_dict` / `model` and an `argparse.Namespace` of `args`.
        use_ema: Prefer the EMA weights when the checkpoint holds both.

    Returns:
        The state dict and which part of the file it came from.
    """
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f'Checkpoint {path} does not exist or is not a file.')
    try:
        if path.suffix == '.safetensors':
            return load_file(path), 'flat'
        with torch.serialization.safe_globals(SAFE_CHECKPOINT_GLOBALS):
            checkpoint = torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Unsupported global' not in str(e):
            raise ConversionError(f'{path} is not a readable checkpoint: truncated or corrupt ({e!s:.200}).') from e
        raise ConversionError(
            f'{path} holds pickled Python objects other than tensors and argparse.Namespace; they are not executed '
            f'here ({str(e).splitlines()[-1][:300]}). If you trust the file, re-save only its tensors, e.g. '
            "`torch.save(torch.load(p, weights_only=False)['state_dict'], 'clean.pth')`, and convert that.") from e
    except (SafetensorError, EOFError, zipfile.BadZipFile, RuntimeError) as e:
        raise ConversionError(
            f'{path} is truncated or corrupt ({type(e).__name__}: {str(e)[:200]}); download it again.') from e
    if not isinstance(checkpoint, dict):
        raise ConversionError(f'{path} holds a {type(checkpoint).__name__}, not a state dict or training checkpoint.')
    state_dict, picked = _pick_weights(checkpoint, use_ema)
    non_tensors = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise ConversionError(
            f'{path} ({picked}) is not a state dict: entries {non_tensors[:5]} are not tensors. Expected a flat state '
            f'dict or a training dict with one of {", ".join(EMA_KEYS + RAW_KEYS)}.')
    return state_dict, picked


def _file_report(path: Path) -> Tuple[int, str]:
    digest = hashlib.sha256()
    with path.open('rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return path.stat().st_size, digest.hexdigest()


def _metric(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def model_card(model_name: str, repo_id: str, num_params: int) -> dict:
    """ timm `generate_readme` fields for the Hub repo `repo_id` holding `model_name` (`architecture.tag`). """
    cfg = get_pretrained_cfg(model_name)
    weight = released_weight(model_name)
    arch = model_name.split('.')[0]
    stl = cfg.license == 'cc-by-nc-sa-4.0'
    usage = f"""```python
import fan_stl  # registers the FAN / STL architectures in timm; needed before any fan model is created
import timm
import torch

model = timm.create_model('hf-hub:{repo_id}', pretrained=True).eval()
config = timm.data.resolve_data_config(model=model)
transform = timm.data.create_transform(**config)
with torch.no_grad():
    logits = model(transform(image).unsqueeze(0))  # image: a PIL RGB image
```
The same weights load with `timm.create_model('{arch}', pretrained=True)` after `import fan_stl`."""
    details = {
        'Model Type': 'Image classification / feature backbone',
        'Architecture': f'`{arch}` ({num_params / 1e6:.2f} M parameters)',
        'Image size': f'{cfg.input_size[1]} x {cfg.input_size[2]} (bicubic, crop_pct {cfg.crop_pct})',
        'Papers': f'{cfg.paper_name} ({cfg.paper_ids})',
        'Original': cfg.origin_url,
        'Dataset': 'ImageNet-1k',
        'License': ('CC-BY-NC-SA-4.0, as the STL README states for its weights' if stl else
                    "non-commercial: the FAN repository's NVIDIA licence (Source Code License-NC); the authors "
                    'state no separate licence for the released weights'),
    }
    if 'in22k' in model_name:
        details['Pretrain Dataset'] = 'ImageNet-22k'
    if weight is not None:
        details['Original weights'] = weight.original
        details['Architecture'] += f"; the authors' README prints {weight.reported_params}"
        details['Reported by the authors (top-1 %)'] = {
            'ImageNet-1k': _metric(weight.top1),
            'ImageNet-C (mean accuracy over corruptions, not mCE)': _metric(weight.in_c),
            'ImageNet-A': _metric(weight.in_a),
            'ImageNet-R': _metric(weight.in_r),
        }
    if cfg.classifier == ('head', 'aux_head'):
        details['Output'] = ('`forward` returns `cls_logits + 0.5 * token_logits.max(dim=1)`, the rule behind the '
                             'published numbers; `fuse_token_logits=False` gives the class head alone.')
    card = dict(
        description=(f"{arch} with the authors' weights, converted to timm / safetensors by the fan_stl package "
                     '(`python -m fan_stl convert`): strict load, sanity forward, and a bit-identical reload of the '
                     'written file were checked at conversion.'),
        details=details,
        usage=usage,
        citation=[CITATIONS['stl'], CITATIONS['fan']] if stl else [CITATIONS['fan']],
        tags=['image-classification', 'timm', 'fan_stl'],
    )
    if stl:
        card['license'] = 'cc-by-nc-sa-4.0'
    else:
        card.update(license='other', license_name='nvidia-source-code-license-nc', license_link=cfg.origin_url)
    return card


def convert_checkpoint(
        checkpoint: Union[str, Path],
        model_name: str,
        out_dir: Union[str, Path],
        use_ema: bool = True,
        repo_id: Optional[str] = None,
        img_size: Optional[int] = None,
) -> ConversionResult:
    """ Convert `checkpoint` into a Hub repo folder for `model_name` and verify it.

    Args:
        checkpoint: Official FAN / STL checkpoint (flat or training dict) or a safetensors file.
        model_name: Registered architecture, optionally with a pretrained tag (`fan_l_hybrid_stl.in1k`); the tag's
            cfg (input size, licence, ...) goes into `config.json`.
        out_dir: Folder to write `model.safetensors`, `config.json` and `README.md` into.
        use_ema: Convert the EMA weights when the checkpoint holds both.
        repo_id: Hub repo the folder is meant for (model card title); defaults to the tag's `hf_hub_id`.
        img_size: Input size of the sanity forward (default: the cfg's input size).
    """
    arch = model_name.split('.')[0]
    if not is_model(arch) or not arch.startswith('fan'):
        raise ConversionError(f"Unknown architecture '{arch}'; `python -m fan_stl list` shows the FAN models.")
    state_dict, picked = load_checkpoint_file(checkpoint, use_ema=use_ema)
    try:
        model = timm.create_model(model_name).eval()
    except PretrainedWeightsError as e:
        raise ConversionError(str(e)) from e
    state_dict = filter_and_check(state_dict, model, checkpoint_filter_fn)
    model.load_state_dict(state_dict, strict=True)

    size = img_size or model.pretrained_cfg['input_size'][-1]
    x = torch.randn(1, model.in_chans, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    if logits.shape != (1, model.num_classes) or not torch.isfinite(logits).all():
        raise ConversionError(f'Sanity forward of {model_name} gave logits of shape {tuple(logits.shape)} with '
                              'non-finite values; the checkpoint is not usable.')

    out_dir = Path(out_dir)
    save_for_hf(model, out_dir, safe_serialization=True)
    repo_id = repo_id or model.pretrained_cfg.get('hf_hub_id') or arch
    num_params = sum(p.numel() for p in model.parameters())
    readme = generate_readme(model_card(model_name, repo_id, num_params), repo_id.split('/')[-1])
    (out_dir / 'README.md').write_text(readme, encoding='utf-8')

    reloaded = timm.create_model(model_name).eval()
    reloaded.load_state_dict(load_file(out_dir / HUB_WEIGHTS_FILE), strict=True)
    with torch.no_grad():
        max_abs_diff = (reloaded(x) - logits).abs().max().item()
    if max_abs_diff != 0:
        raise ConversionError(f'The written {HUB_WEIGHTS_FILE} does not reproduce the model (max |diff| '
                              f'{max_abs_diff:.3g}); the files in {out_dir} must not be published.')
    files = {p.name: _file_report(p) for p in sorted(out_dir.iterdir()) if p.is_file()}
    return ConversionResult(model_name, out_dir, picked, files, max_abs_diff)


def _transport_errors() -> Tuple[type, ...]:
    """ Connection-level errors of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x). """
    errors = [OSError]
    for module_name in ('httpx2', 'httpx'):
        try:
            errors.append(importlib.import_module(module_name).TransportError)
        except ImportError:
            continue
    return tuple(errors)


def push_to_hub(out_dir: Union[str, Path], repo_id: str, private: bool = False) -> str:
    """ Upload a converted folder to the Hub repo `repo_id` (created if needed); returns the commit URL.

    The token comes from the usual Hugging Face login (`hf auth login`) or the `HF_TOKEN` environment variable.
    On any failure the folder is left as it is, so the push can simply be retried.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    out_dir = Path(out_dir)
    missing = [n for n in (HUB_WEIGHTS_FILE, 'config.json', 'README.md') if not (out_dir / n).is_file()]
    if missing:
        raise ConversionError(f'{out_dir} lacks {", ".join(missing)}; run the conversion first.')
    retry = f'The converted files in {out_dir} are intact; retry with `python -m fan_stl convert ... --push {repo_id}`.'
    api = HfApi(library_name='fan_stl')
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=out_dir, commit_message='Add converted weights')
    except OfflineModeIsEnabled as e:
        raise ConversionError(f'Cannot push to {repo_id}: HF_HUB_OFFLINE is set. Unset it when online. {retry}') from e
    except LocalTokenNotFoundError as e:
        raise ConversionError(
            f'Cannot push to {repo_id}: no Hugging Face token. Run `hf auth login` or set HF_TOKEN. {retry}') from e
    except HfHubHTTPError as e:
        raise ConversionError(f'Cannot push to {repo_id}: the Hub refused it ({e}). {retry}') from e
    except _transport_errors() as e:
        raise ConversionError(
            f'Cannot push to {repo_id}: the Hub is unreachable ({type(e).__name__}: {e}). {retry}') from e
    return str(commit)

