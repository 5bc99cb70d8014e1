"""Write weights as a Hugging Face Hub folder with honest metadata; convert FAN / STL checkpoints into one; push it.

`write_weights_folder` is the one writer of `model.safetensors` + timm `config.json` + model card `README.md` used by
`convert`, `publish` and the demo: `config.json` carries the real input size, class count and class names, and the
card claims "the authors' weights" (their tag, licence and reported numbers) only for a released file whose sha256
was verified; any other weights get a neutral card. `convert_checkpoint` reads a checkpoint without executing pickled
code, maps it to our layout (`checkpoint_filter_fn`), loads it strictly, checks a forward pass, writes the folder
and checks that the written file reproduces the model. The folder loads with
`timm.create_model('local-dir:DIR', pretrained=True)`; `push_to_hub` uploads exactly the files written.
"""
import importlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

import torch
from safetensors.torch import load_file

import timm
from timm.models import get_pretrained_cfg, is_model, save_for_hf
from timm.models._hub import generate_readme

from fan_stl.models.fan import checkpoint_filter_fn
from fan_stl.utils.atomic import give_usual_mode

from .checkpoint import filter_and_check
from .drive import authors_cache_dir
from .files import PretrainedWeightsError, read_checkpoint, sha256_of
from .released import RELEASED_WEIGHTS, ReleasedWeight, released_tags, released_weight
from .sources import HUB_WEIGHTS_FILE, url_cached_file

__all__ = [
    'ConversionError', 'ConversionResult', 'write_weights_folder', 'convert_checkpoint',
    'convert_state_dict', 'released_file', 'known_release_hashes', 'push_to_hub',
]

CARD_FILE = 'README.md'
WRITTEN_FILES = (HUB_WEIGHTS_FILE, 'config.json', CARD_FILE)
# Keys of a registered cfg that describe the authors' release, not weights trained or fine-tuned by someone else.
RELEASE_CFG_KEYS = ('tag', 'license', 'hf_hub_id', 'url', 'file', 'hf_hub_filename', 'source', 'state_dict')

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
    release: Optional[ReleasedWeight] = None  # the authors' release the source file was verified to be
    source_sha256: str = ''
    num_params: int = 0

    def summary(self) -> str:
        what = (f"the authors' released {self.release.name} (sha256 verified)" if self.release else
                'not a released file: neutral model card, no authors\' tag, licence or numbers')
        lines = [
            f'Converted {self.picked} weights into {self.model_name} -> {self.out_dir}',
            f'Source sha256 {self.source_sha256}: {what}',
            f'Sanity forward: reloaded {HUB_WEIGHTS_FILE} reproduces the logits (max |diff| {self.max_abs_diff:.3g})',
        ]
        lines += [f'  {name:<18} {size / 2 ** 20:10.2f} MiB  sha256 {digest}' for name, (size, digest) in
                  self.files.items()]
        return '\n'.join(lines)


def _metric(value: Optional[float]) -> str:
    return '–' if value is None else f'{value:.1f}'


def _usage(repo_id: str, arch: str, released: bool) -> str:
    also = (f"\nThe same weights load with `timm.create_model('{arch}', pretrained=True)` after `import fan_stl`."
            if released else '')
    return f"""```python
import fan_stl  # registers the FAN / STL architectures in timm; needed before any fan model is created
import timm
import torch

model = timm.create_model('hf-hub:{repo_id}', pretrained=True).eval()  # or 'local-dir:FOLDER'
config = timm.data.resolve_data_config(model=model)  # this folder's input size and normalisation
transform = timm.data.create_transform(**config)
with torch.no_grad():
    logits = model(transform(image).unsqueeze(0))  # image: a PIL RGB image
```{also}"""


def _output_rule(cfg: dict) -> Dict[str, str]:
    if tuple(cfg.get('classifier') or ()) != ('head', 'aux_head'):
        return {}
    return {'Output': '`forward` returns `cls_logits + 0.5 * token_logits.max(dim=1)`, the rule behind the published '
                      'numbers; `fuse_token_logits=False` gives the class head alone.'}


def model_card(weight: ReleasedWeight, repo_id: str, num_params: int, original_sha256: str) -> dict:
    """ timm `generate_readme` fields for the Hub copy of the authors' released `weight` (sha256 verified). """
    cfg = get_pretrained_cfg(weight.name)
    arch = weight.architecture
    stl = cfg.license == 'cc-by-nc-sa-4.0'
    details = {
        'Model Type': 'Image classification / feature backbone',
        'Architecture': f"`{arch}` ({num_params:,} parameters; the authors' README prints {weight.reported_params})",
        'Image size': f'{cfg.input_size[1]} x {cfg.input_size[2]} (bicubic, crop_pct {cfg.crop_pct})',
        'Papers': f'{cfg.paper_name} ({cfg.paper_ids})',
        'Original': cfg.origin_url,
        'Dataset': 'ImageNet-1k',
        'License': ('CC-BY-NC-SA-4.0, as the STL README states for its weights' if stl else
                    "non-commercial: the FAN repository's NVIDIA licence (Source Code License-NC); the authors "
                    'state no separate licence for the released weights'),
        'Original weights': weight.original,
        'Original file sha256': original_sha256,
        'Reported by the authors (top-1 %)': {
            'ImageNet-1k': _metric(weight.top1),
            'ImageNet-C (mean accuracy over corruptions, not mCE)': _metric(weight.in_c),
            'ImageNet-A': _metric(weight.in_a),
            'ImageNet-R': _metric(weight.in_r),
        },
        **_output_rule(cfg.to_dict()),
    }
    if 'in22k' in weight.name:
        details['Pretrain Dataset'] = 'ImageNet-22k'
    card = dict(
        description=(f"{arch} with the authors' weights ({weight.original}), converted to timm / safetensors by "
                     'the fan_stl package: strict load, finite sanity forward, and a bit-identical reload of the '
                     'written file were checked at conversion.'),
        details=details,
        usage=_usage(repo_id, arch, released=True),
        citation=[CITATIONS['stl'], CITATIONS['fan']] if stl else [CITATIONS['fan']],
        tags=['image-classification', 'timm', 'fan_stl'],
    )
    if stl:
        card['license'] = 'cc-by-nc-sa-4.0'
    else:
        card.update(license='other', license_name='nvidia-source-code-license-nc', license_link=cfg.origin_url)
    return card


def neutral_card(model: torch.nn.Module, repo_id: str, input_size: int, source: str) -> dict:
    """ Card fields for weights that are not one of the authors' released files: only what is known about them. """
    arch = model.pretrained_cfg.get('architecture', type(model).__name__)
    num_params = sum(p.numel() for p in model.parameters())
    details = {
        'Model Type': 'Image classification / feature backbone',
        'Architecture': f'`{arch}` ({num_params:,} parameters), registered by the fan_stl package',
        'Image size': f'{input_size} x {input_size}',
        'Classes': str(model.num_classes),
        'Weights': source,
        'License': ('set by whoever trained these weights; if they were fine-tuned from the FAN / STL authors\' '
                    'released weights, those weights\' non-commercial terms apply too'),
        **_output_rule(model.pretrained_cfg),
    }
    return dict(
        description=(f'{arch} weights saved by the fan_stl package. They are not one of the FAN / STL authors\' '
                     'released files, so no accuracy is claimed here.'),
        details=details,
        usage=_usage(repo_id, arch, released=False),
        citation=[CITATIONS['fan']],
        tags=['image-classification', 'timm', 'fan_stl'],
        license='other', license_name='unspecified',
    )


def _check_out_dir(out_dir: Path, overwrite: bool) -> None:
    for parent in (out_dir, *out_dir.parents):
        if parent.exists() and not parent.is_dir():
            raise ConversionError(f'Cannot write into {out_dir}: {parent} is a file, not a folder. Choose another '
                                  'output folder.')
    if out_dir.is_dir() and not overwrite:
        present = sorted(p.name for p in out_dir.iterdir() if not p.name.startswith('.writing-'))
        if present:
            raise ConversionError(
                f'{out_dir} already holds {", ".join(present[:5])}{" ..." if len(present) > 5 else ""}; choose an '
                'empty or new folder, or pass --overwrite (overwrite=True) to replace the weight files in it.')


def write_weights_folder(
        model: torch.nn.Module,
        out_dir: Union[str, Path],
        *,
        input_size: Optional[int] = None,
        label_names: Optional[Sequence[str]] = None,
        release: Optional[ReleasedWeight] = None,
        original_sha256: str = '',
        repo_id: Optional[str] = None,
        source: str = 'trained or converted by the user',
        model_args: Optional[dict] = None,
        overwrite: bool = False,
) -> Dict[str, Tuple[int, str]]:
    """ Write `model` as `model.safetensors` + timm `config.json` + `README.md` with its real metadata.

    Args:
        model: The model whose weights are written (eval mode recommended).
        out_dir: Folder to write into; created if needed. A folder holding other files is refused unless
            `overwrite`. Each file is written to a temp folder inside it, then moved into place (`os.replace`).
        input_size: The image size the weights were trained / fine-tuned at; goes into `config.json` (`input_size`),
            so timm's data config evaluates at it. Default: the model's cfg input size.
        label_names: Class names in head order (must match `model.num_classes`).
        release: The authors' released weight these are, verified by sha256 (`released_file`); only then the card
            and `config.json` carry the authors' tag, licence and reported numbers.
        original_sha256: sha256 of the file the weights came from (recorded in the card).
        repo_id: Hub repo the folder is meant for (card title and usage). Default: the folder name.
        source: One line on where the weights come from, for the neutral card.
        model_args: Extra `create_model` kwargs needed to rebuild the model (e.g. `drop_path_rate` is not needed).
        overwrite: Replace the weight files of a folder that already holds files.

    Returns:
        file name -> (bytes, sha256) of the files written, exactly `WRITTEN_FILES`.
    """
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, overwrite)
    cfg_size = (model.pretrained_cfg.get('input_size') or (3, 224, 224))[-1]
    size = int(input_size or cfg_size)
    if label_names is not None and len(label_names) != model.num_classes:
        raise ConversionError(f'{len(label_names)} class names for a model with {model.num_classes} classes.')
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix='.writing-', dir=out_dir))
    try:
        save_for_hf(model, staging, model_args=model_args, safe_serialization=True,
                    model_config={'label_names': list(label_names)} if label_names else None,
                    data_config={'input_size': (model.in_chans, size, size)})
        config = json.loads((staging / 'config.json').read_text())
        pretrained_cfg = config['pretrained_cfg']
        if release is None:
            for key in RELEASE_CFG_KEYS:
                pretrained_cfg.pop(key, None)
        else:
            pretrained_cfg.update(tag=release.tag, hf_hub_id=release.hub_repo)
        (staging / 'config.json').write_text(json.dumps(config, indent=2))
        repo_id = repo_id or (release.hub_repo if release else out_dir.name)
        num_params = sum(p.numel() for p in model.parameters())
        card = (model_card(release, repo_id, num_params, original_sha256) if release else
                neutral_card(model, repo_id, size, source + (f' (source file sha256 {original_sha256})'
                                                             if original_sha256 else '')))
        (staging / CARD_FILE).write_text(generate_readme(card, repo_id.split('/')[-1]), encoding='utf-8')
        for name in WRITTEN_FILES:
            os.replace(give_usual_mode(staging / name), out_dir / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: (os.path.getsize(out_dir / name), sha256_of(out_dir / name)) for name in WRITTEN_FILES}


def known_release_hashes(weight: ReleasedWeight) -> Dict[str, str]:
    """ sha256 -> where it was seen, for copies of `weight`'s original file downloaded on this machine.

    Sources: converted Drive copies (named by the original's sha256) and timm's cached download of a release URL.
    """
    known = {}
    pattern = f'{weight.name}.gdrive-{weight.drive_id}.sha256-*.safetensors' if weight.drive_id else ''
    for path in authors_cache_dir().glob(pattern) if pattern else ():
        known[path.name.rsplit('.sha256-', 1)[1].split('.')[0]] = str(path)
    if weight.direct_url:
        cached = url_cached_file(weight.direct_url)
        if cached.is_file():
            known[sha256_of(cached)] = str(cached)
    return known


def released_file(arch: str, sha256: str, released_tag: Optional[str] = None) -> Optional[ReleasedWeight]:
    """ The authors' released weight of `arch` whose original file has this sha256, or None.

    With `released_tag` the caller asserts which release the file is; it is then verified and a mismatch (or a
    release whose sha256 cannot be known here) is an error rather than a silent neutral card.
    """
    candidates = [w for w in RELEASED_WEIGHTS if arch in (w.architecture, *(a.split('.')[0] for a in w.aliases))]
    if released_tag is not None:
        weight = released_weight(f'{arch}.{released_tag}')
        if weight is None:
            tags = ', '.join(sorted({w.tag for w in candidates})) or 'none'
            raise ConversionError(f"'{released_tag}' is not a released tag of {arch} (released: {tags}).")
        known = known_release_hashes(weight)
        if sha256 in known:
            return weight
        if not known:
            raise ConversionError(
                f"Cannot verify --released {released_tag}: the sha256 of the authors' file {weight.original} is not "
                f"known on this machine. Load it once online (timm.create_model('{weight.name}', pretrained=True) "
                'caches it), or drop --released to write a neutral card.')
        raise ConversionError(
            f"The file is not the authors' released {weight.name}: its sha256 {sha256} differs from the downloaded "
            f'original ({", ".join(known)}). Drop --released to write a neutral card.')
    for weight in candidates:
        if sha256 in known_release_hashes(weight):
            return weight
    return None


def convert_state_dict(
        state_dict: Dict[str, torch.Tensor],
        model_name: str,
        out_dir: Union[str, Path],
        *,
        picked: str = 'flat',
        source_sha256: str = '',
        release: Optional[ReleasedWeight] = None,
        num_classes: Optional[int] = None,
        img_size: Optional[int] = None,
        label_names: Optional[Sequence[str]] = None,
        repo_id: Optional[str] = None,
        overwrite: bool = False,
) -> ConversionResult:
    """ Load `state_dict` strictly into `model_name`, check it, write the folder, check the written file. """
    arch = model_name.split('.')[0]
    if not is_model(arch) or not arch.startswith('fan'):
        raise ConversionError(f"Unknown architecture '{arch}'; `python -m fan_stl list` shows the FAN models.",
                              f"Unknown architecture '{arch}'; `python -m fan_stl list` shows the FAN models.")
    if img_size is not None and (img_size < 16 or img_size % 16):
        raise ConversionError(f'--img-size {img_size}: FAN models need a positive multiple of 16 (e.g. 224).')
    if num_classes is not None and num_classes < 1:
        raise ConversionError(f'--num-classes {num_classes}: must be at least 1.')
    _check_out_dir(Path(out_dir), overwrite)
    kwargs = {} if num_classes is None else {'num_classes': num_classes}
    try:
        model = timm.create_model(release.name if release else arch, **kwargs).eval()
    except PretrainedWeightsError as e:
        raise ConversionError(str(e), e.cli_message) from None
    state_dict = filter_and_check(state_dict, model, checkpoint_filter_fn)
    model.load_state_dict(state_dict, strict=True)

    size = img_size or model.pretrained_cfg['input_size'][-1]
    x = torch.randn(1, model.in_chans, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)
    if logits.shape != (1, model.num_classes) or not torch.isfinite(logits).all():
        raise ConversionError(f'Sanity forward of {model_name} gave logits of shape {tuple(logits.shape)} with '
                              'non-finite values; the checkpoint is not usable.')
    files = write_weights_folder(
        model, out_dir, input_size=None if release else img_size, label_names=label_names, release=release,
        original_sha256=source_sha256, repo_id=repo_id, overwrite=True,
        source='converted from a user checkpoint with `python -m fan_stl convert`')
    reloaded = timm.create_model(release.name if release else arch, **kwargs).eval()
    reloaded.load_state_dict(load_file(Path(out_dir) / HUB_WEIGHTS_FILE), strict=True)
    with torch.no_grad():
        max_abs_diff = (reloaded(x) - logits).abs().max().item()
    if max_abs_diff != 0:
        raise ConversionError(f'The written {HUB_WEIGHTS_FILE} does not reproduce the model (max |diff| '
                              f'{max_abs_diff:.3g}); the files in {out_dir} must not be published.')
    num_params = sum(p.numel() for p in model.parameters())
    return ConversionResult(model.pretrained_cfg['architecture'] + (f'.{release.tag}' if release else ''),
                            Path(out_dir), picked, files, max_abs_diff, release, source_sha256, num_params)


def convert_checkpoint(
        checkpoint: Union[str, Path],
        model_name: str,
        out_dir: Union[str, Path],
        use_ema: bool = True,
        repo_id: Optional[str] = None,
        img_size: Optional[int] = None,
        num_classes: Optional[int] = None,
        released_tag: Optional[str] = None,
        label_names: Optional[Sequence[str]] = None,
        overwrite: bool = False,
) -> ConversionResult:
    """ Convert `checkpoint` into a Hub folder for `model_name` and verify it.

    Args:
        checkpoint: Official FAN / STL checkpoint (flat or training dict), a fine-tuned one, or a safetensors file.
        model_name: Registered architecture, optionally with one of its release tags (an unknown tag is refused;
            a known one does not make the weights count as the authors' release: only the sha256 or `released_tag`
            do).
        out_dir: Folder to write `model.safetensors`, `config.json` and `README.md` into (new or empty unless
            `overwrite`).
        use_ema: Convert the EMA weights when the checkpoint holds both.
        repo_id: Hub repo the folder is meant for (model card title).
        img_size: Input size the weights were trained at (config.json and the sanity forward); default: the cfg's.
            A released file keeps its release's size in config.json.
        num_classes: Classes of a fine-tuned checkpoint (default: the architecture's 1000).
        released_tag: Assert that the file is the authors' release with this tag; verified by sha256.
        label_names: Class names in head order, for config.json.
        overwrite: Replace the weight files of a folder that already holds files.

    The card claims the authors' weights only when the file's sha256 matches a released file known on this machine
    (or `released_tag` is given and verified); any other file gets a neutral card and config.json.
    """
    arch, _, tag = model_name.partition('.')
    if tag and tag not in released_tags(arch):
        known = ', '.join(f'{arch}.{t}' for t in released_tags(arch)) or f'none (use {arch} without a tag)'
        raise ConversionError(f"Unknown release tag '{tag}' in --model {model_name}. Release tags of {arch}: "
                              f'{known}. The tag only names the architecture; --released TAG claims a release.')
    state_dict, picked = read_checkpoint(checkpoint, use_ema=use_ema)
    sha256 = sha256_of(checkpoint)
    release = released_file(arch, sha256, released_tag)
    return convert_state_dict(
        state_dict, arch, out_dir, picked=picked, source_sha256=sha256, release=release, num_classes=num_classes,
        img_size=img_size, label_names=label_names, repo_id=repo_id, overwrite=overwrite)


def _transport_errors() -> Tuple[type, ...]:
    """ Connection-level errors of the HTTP client huggingface_hub uses (httpx2 in 2.x, httpx in 1.x). """
    errors = [OSError]
    for module_name in ('httpx2', 'httpx'):
        try:
            errors.append(importlib.import_module(module_name).TransportError)
        except ImportError:
            continue
    return tuple(errors)


def push_to_hub(
        out_dir: Union[str, Path], repo_id: str, private: bool = False, files: Iterable[str] = WRITTEN_FILES,
        commit_message: str = 'Add converted weights',
) -> str:
    """ Upload exactly `files` of a written folder to the Hub repo `repo_id` (created if needed); returns the commit.

    The token comes from the usual Hugging Face login (`hf auth login`) or the `HF_TOKEN` environment variable.
    Only the named files are uploaded (an allow-list), whatever else the folder holds. On any failure the folder is
    left as it is, so the push can simply be retried.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

    out_dir = Path(out_dir)
    files = list(files)
    if any(c in n for n in files for c in '*?['):
        raise ConversionError(f'push_to_hub uploads named files, not patterns: {files}')
    missing = [n for n in files if not (out_dir / n).is_file()]
    if missing:
        raise ConversionError(f'{out_dir} lacks {", ".join(missing)}; run the conversion first.')
    retry = f'The converted files in {out_dir} are intact; retry the push.'
    api = HfApi(library_name='fan_stl')
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=out_dir, commit_message=commit_message,
                                   allow_patterns=files)  # plain names: each matches only itself
    except OfflineModeIsEnabled:
        raise ConversionError(
            f'Cannot push to {repo_id}: HF_HUB_OFFLINE is set. Unset it when online. {retry}') from None
    except LocalTokenNotFoundError:
        raise ConversionError(
            f'Cannot push to {repo_id}: no Hugging Face token. Run `hf auth login` or set HF_TOKEN. {retry}') from None
    except HfHubHTTPError as e:
        raise ConversionError(f'Cannot push to {repo_id}: the Hub refused it ({e}). {retry}') from None
    except _transport_errors() as e:
        raise ConversionError(
            f'Cannot push to {repo_id}: the Hub is unreachable ({type(e).__name__}: {e}). {retry}') from None
    return str(commit)
