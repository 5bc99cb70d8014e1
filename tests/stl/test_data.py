"""build_data: every data-side decision of a stage in one place; the README's own loop and a new method use it."""
import numpy as np
import pytest
import timm
import torch
from torch.utils.data import DataLoader

from fan_stl.stl import MIX_METHODS, MixMethod, STLConfig, build_data, build_task
from fan_stl.stl.data import check_steps_per_epoch
from fan_stl.stl.maskmix import MaskMix
from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.mixing import STLCollateMixup, STLMixup
from fan_stl.stl.views import PairedViewDataset, PairedViewLoader
from tests.stl_helpers import ColourDataset

K = 3
SMALL = dict(num_classes=K, depth=1, stem_depths=(1, 1))
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


def _teacher():
    return timm.create_model('fan_t_hybrid_tl', **SMALL)


def test_the_stage_decides_pairing_resplit_and_the_mixer():
    plain, stl = build_data(STLConfig(stage='plain')), build_data(STLConfig(stage='stl', teacher=_teacher()))
    dataset = ColourDataset(COLOURS)
    assert plain.dataset(dataset) is dataset and not plain.re_split
    assert isinstance(stl.dataset(dataset), PairedViewDataset) and stl.re_split
    assert isinstance(stl.mixer(prefetcher=True, num_classes=K), STLCollateMixup)
    mixer = stl.mixer(mixup_alpha=1., num_classes=K)
    assert type(mixer) is STLMixup and mixer.paired and mixer.method is stl.method
    loader = DataLoader(list(range(8)), batch_size=4, drop_last=True)
    assert isinstance(stl.loader(loader, 4, prefetcher=True), PairedViewLoader)
    assert plain.loader(loader, 4, prefetcher=True) is loader and stl.loader(loader, 4) is loader


def test_data_side_checks_name_the_fix():
    with pytest.raises(ValueError, match='zero training steps.*batch size of at most 6'):
        check_steps_per_epoch(0, num_samples=6, batch_size=8)
    with pytest.raises(ValueError, match='zero training steps'):
        build_data(STLConfig(stage='tl')).loader(DataLoader(list(range(3)), batch_size=4, drop_last=True), 4)
    with pytest.raises(ValueError, match='one cell covers the whole image. Use --maskmix-cell 3 or less'):
        build_data(STLConfig(stage='tl', mix_method='maskmix')).check_input((3, 64, 64))
    build_data(STLConfig(stage='tl')).check_input((3, 64, 64))  # Mixup / CutMix mix any size
    with pytest.raises(ValueError, match='--num-classes .* 4 but /data has 3 class folders; set it to 3'):
        build_data(STLConfig(stage='tl')).check_num_classes(4, ['a', 'b', 'c'], '/data')
    assert build_data(STLConfig(stage='tl', mix_method='maskmix')).needs_mixup_slot
    assert not build_data(STLConfig(stage='tl', mix_method='mixtoken')).needs_mixup_slot


def test_readme_own_loop_mixes_with_the_configured_method():
    """ The README's loop: `STLConfig(mix_method='maskmix')` must mix with MaskMix, not timm's Mixup / CutMix. """
    np.random.seed(0)
    torch.manual_seed(0)
    config = STLConfig(stage='stl', teacher=_teacher(), mix_method='maskmix', maskmix_cell=1, token_label_mode='soft')
    student = timm.create_model('fan_t_hybrid_stl', **SMALL)
    task = build_task(config, student, smoothing=0.1)
    data = build_data(config)
    dataset = data.dataset(ColourDataset(COLOURS, length=4, size=(64, 64)))
    dataset.transform = timm.data.create_transform(64, is_training=True, color_jitter=0.)
    loader = data.loader(DataLoader(dataset, batch_size=4, shuffle=True, drop_last=True), batch_size=4)
    mixer = data.mixer(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=K)
    assert isinstance(mixer.method, MaskMix) and mixer.method.cell == 1
    task.train()
    pairs, labels = next(iter(loader))
    pairs, target = mixer(pairs, labels)
    own = MixRecord.unpack(target, K)[1].own.view(4, 4, 4)
    assert ((own == 0) | (own == 1)).all() and (own.sum((1, 2)) < 16).all()  # whole 1-token cells, every sample mixed
    assert not all(_is_box(own[b]) for b in range(4))  # a scattered cell mask, not a CutMix box
    loss = task(pairs, target)['loss']
    loss.backward()
    assert torch.isfinite(loss) and task.steps == 1


def _is_box(partner_cells: torch.Tensor) -> bool:
    rows, cols = torch.nonzero(partner_cells == 0, as_tuple=True)
    if not len(rows):
        return True
    return (partner_cells[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 0).all().item()


class HalfSwap(MixMethod):
    """ The README's example method: a band of `share` of every image's width comes from its partner. """

    def __init__(self, share: float = 0.5, pairing: str = 'flip'):
        super().__init__(pairing)
        if not 0. < share < 1.:
            raise ValueError(f'HalfSwap needs 0 < share < 1; got {share}.')
        self.share = share

    @classmethod
    def from_config(cls, config) -> 'HalfSwap':
        return cls(pairing=config.mix_pairing)

    def draw(self, mixer, batch, height, width):
        own = torch.ones(batch, height, width, dtype=torch.float64)
        own[:, :, width - round(width * self.share):] = 0.
        return own, own.mean((1, 2))


@pytest.fixture
def half_swap():
    MIX_METHODS['half_swap'] = HalfSwap  # the one registry line of a new method
    yield
    del MIX_METHODS['half_swap']


def test_a_method_registered_in_one_line_trains_a_step(half_swap):
    with pytest.raises(ValueError, match='share'):
        HalfSwap(share=1.)
    config = STLConfig(stage='tl', mix_method='half_swap')
    task = build_task(config, timm.create_model('fan_t_hybrid_tl', **SMALL), smoothing=0.).train()
    mixer = build_data(config).mixer(cutmix_alpha=1., num_classes=K, label_smoothing=0.)
    images = torch.rand(4, 3, 32, 32)
    mixed, packed = mixer(images, torch.tensor([0, 1, 2, 0]))
    torch.testing.assert_close(mixed[:, :, :, 16:], images.flip(0)[:, :, :, 16:])
    soft, record = MixRecord.unpack(packed, K)
    torch.testing.assert_close(record.lam, torch.full((4,), 0.5, dtype=record.lam.dtype))
    loss = task(mixed, packed)['loss']
    loss.backward()
    assert torch.isfinite(loss) and task.steps == 1
