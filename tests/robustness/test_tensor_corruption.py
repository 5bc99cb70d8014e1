"""The torch backend of `eval --corrupt-on-the-fly`: the batch corruption at the model's input size, its 8-bit /
JPEG rounding, and the evaluator's use of it (the same numbers as corrupting the transformed images by hand)."""
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision.transforms import Compose

from fan_stl.robustness.evaluate import (
    EvalSettings, OnTheFlySpec, ResultsMismatchError, evaluate_imagefolder, evaluate_robustness, model_data_config,
)
from fan_stl.robustness.tensor_corruption import TensorCorruption
from fan_stl.robustness.torch_corruptions import corrupt_batch, to_uint8


def _folder(root, classes=2, per_class=3, size=40):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f'c{c}').mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / f'c{c}' / f'{i}.png')
    return root


def test_cells_round_to_8_bits_or_jpeg_and_are_keyed():
    images = torch.rand(3, 3, 40, 40)
    lossless = TensorCorruption('gaussian_noise', 2, seed=1, image_format='png')(images, ['a', 'b', 'c'])
    assert torch.equal(lossless, to_uint8(corrupt_batch(images, 'gaussian_noise', 2, 1, ['a', 'b', 'c'])) / 255)
    jpeg = TensorCorruption('gaussian_noise', 2, seed=1)(images, ['a', 'b', 'c'])
    assert torch.equal(jpeg * 255, torch.round(jpeg * 255)) and not torch.equal(jpeg, lossless)
    with pytest.raises(ValueError, match='unknown corruption'):
        TensorCorruption('rain', 1)


def test_evaluator_corrupts_the_transformed_batch_on_the_device(tmp_path):
    src = _folder(tmp_path / 'src')
    torch.manual_seed(0)
    model = timm.create_model('test_vit', num_classes=2, img_size=32).eval()
    settings = EvalSettings(batch_size=4, workers=0, device='cpu', img_size=32, progress=False)
    cell = TensorCorruption('elastic_transform', 5, seed=2, image_format='png')
    scored = evaluate_imagefolder(model, src, settings, corruption=cell)

    transform = timm.data.create_transform(**model_data_config(model, 32))
    resize, normalize = Compose(transform.transforms[:-1]), transform.transforms[-1]
    paths = sorted(src.rglob('*.png'))
    clean = torch.stack([resize(Image.open(p).convert('RGB')) for p in paths])
    keys = [p.relative_to(src).as_posix() for p in paths]
    with torch.inference_mode():
        logits = model(normalize(cell(clean, keys)))
    targets = torch.tensor([0, 0, 0, 1, 1, 1])
    assert scored['top1'] == pytest.approx(100 * float((logits.argmax(1) == targets).float().mean()))

    results = evaluate_robustness(model, 'm', tmp_path / 'r.json', clean=src, settings=settings,
                                  on_the_fly=OnTheFlySpec(('fog', 'contrast'), (1, 5), seed=2))
    assert results['imagenet_c']['on_the_fly'] == {'seed': 2, 'format': 'jpg', 'backend': 'torch'}
    assert set(results['imagenet_c']['cells']) == {'fog', 'contrast'}
    with pytest.raises(ResultsMismatchError, match='backend'):
        evaluate_robustness(model, 'm', tmp_path / 'r.json', clean=src, settings=settings,
                            on_the_fly=OnTheFlySpec(('fog',), (1,), seed=2, backend='imagecorruptions'))


def test_a_cuda_device_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA')
    with pytest.raises(ValueError, match='no usable CUDA GPU'):
        EvalSettings(device='cuda')
