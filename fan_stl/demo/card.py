"""The model card (`README.md`) of a weights folder trained by the demo: what the weights are, how to load them.

A demo folder is a local folder, not a Hub repo, so its snippet loads it with timm's `local-dir:` prefix (the folder's
absolute path when the card was written) and classifies one image of the run's own validation set; the card cites the
papers whose methods the arm ran. Written by `fan_stl.demo.experiment` after `write_weights_folder`, replacing that
function's general-purpose card.
"""
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch.nn as nn

from timm.models._hub import generate_readme

from ..stl.config import STAGES
from ..utils.atomic import write_text_atomic
from ..weights.convert import CARD_FILE, CITATIONS

# methods the demo's arms run beyond FAN and STL (bibliographic facts)
DEMO_CITATIONS = {
    'token_labeling': """@inproceedings{jiang2021all,
  title={All Tokens Matter: Token Labeling for Training Better Vision Transformers},
  author={Jiang, Zi-Hang and Hou, Qibin and Yuan, Li and Zhou, Daquan and Shi, Yujun and Jin, Xiaojie and
          Wang, Anran and Feng, Jiashi},
  booktitle={Advances in Neural Information Processing Systems},
  year={2021}
}""",
    'convnext': """@inproceedings{liu2022convnet,
  title={A ConvNet for the 2020s},
  author={Liu, Zhuang and Mao, Hanzi and Wu, Chao-Yuan and Feichtenhofer, Christoph and Darrell, Trevor and
          Xie, Saining},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition},
  year={2022}
}""",
}

_STAGES = {
    'plain': 'a plain classifier: cross-entropy on the (smoothed) image label, no token head',
    'tl': 'STL stage 1, the token labeler: its token head is trained on the image label (Token Labeling\'s loss)',
    'stl': 'STL stage 2, the student: trained on the per-token labels of the teacher arm `{teacher}` (same seed)',
}


def demo_citations(stage: str) -> List[str]:
    """ The papers behind an arm of `stage`: FAN and its ConvNeXt stem always; STL and Token Labeling for token
    heads. """
    papers = [CITATIONS['fan'], DEMO_CITATIONS['convnext']]
    return papers + ([CITATIONS['stl'], DEMO_CITATIONS['token_labeling']] if STAGES[stage].token_head else [])


def usage_snippet(folder: Path, example_image: Optional[Path]) -> str:
    """ Python that loads `folder` with `local-dir:` and classifies `example_image` (one of the run's images). """
    image = (f"Image.open({str(example_image)!r}).convert('RGB')  # a validation image of the demo's set"
             if example_image else "Image.open('IMAGE.png').convert('RGB')  # an image of the training classes")
    return f"""```python
import fan_stl  # registers the FAN / STL architectures in timm; needed before any fan model is created
import timm
import torch
from PIL import Image

model = timm.create_model('local-dir:{folder.resolve()}', pretrained=True).eval()  # this folder, where it was written
config = timm.data.resolve_data_config(model=model)  # the trained input size and normalisation
transform = timm.data.create_transform(**config)
image = {image}
with torch.no_grad():
    probs = model(transform(image).unsqueeze(0)).softmax(-1)[0]
print(model.pretrained_cfg['label_names'][int(probs.argmax())], f'{{float(probs.max()):.2f}}')
```"""


def demo_card(
        model: nn.Module,
        folder: Path,
        arm: str,
        seed: int,
        train_cfg: Any,
        teacher: Optional[str],
        history: Sequence[Mapping[str, float]],
        class_names: Sequence[str],
        example_image: Optional[Path],
) -> Dict[str, Any]:
    """ timm `generate_readme` fields for `arm`'s weights (seed `seed`) trained by `train_cfg` (a `TrainConfig`) for
    the epochs of `history`. """
    arch = model.pretrained_cfg.get('architecture', type(model).__name__)
    num_params = sum(p.numel() for p in model.parameters())
    stage, size = train_cfg.stl.stage, train_cfg.img_size
    details = {
        'Model Type': 'Image classification (a demonstration of the STL pipeline, not a model for real images)',
        'Architecture': f'`{arch}` with {dict(train_cfg.model_kwargs)} ({num_params:,} parameters), '
                        'registered by the fan_stl package',
        'Arm': f'`{arm}`, seed {seed}: ' + _STAGES.get(stage, f'training stage `{stage}`').format(teacher=teacher),
        'Image size': f'{size} x {size}',
        'Classes': ', '.join(class_names),
        'Training': f'from scratch, {len(history)} epoch{"s" * (len(history) != 1)} at batch {train_cfg.batch_size}, '
                    f'peak lr {train_cfg.lr} '
                    '(the recipe `fan_stl.demo.recipe.DEMO_RECIPE`, unless the run changed it)',
        'Validation top-1 after the last epoch': f'{history[-1]["val_top1"]:.1f} %' if history else '-',
        'License': 'set by whoever ran the demo (trained from scratch: no pretrained weights are involved)',
    }
    return dict(
        description=(f'The `{arm}` arm of `python -m fan_stl demo`: {arch} trained from scratch on the demo\'s '
                     'image set. The demo compares a baseline, a FAN token labeler and an STL student under one '
                     'recipe; see the fan_stl README.'),
        details=details,
        usage=usage_snippet(folder, example_image),
        citation=demo_citations(stage),
        tags=['image-classification', 'timm', 'fan_stl'],
        license='other', license_name='unspecified',
    )


def write_demo_card(folder: Path, card: Mapping[str, Any]) -> Path:
    """ Write `card` as the folder's `README.md` (atomically); returns its path. """
    return write_text_atomic(Path(folder) / CARD_FILE, generate_readme(dict(card), Path(folder).name))
