"""STL mixing: students mixed as timm mixes them, the teacher view never; the MixRecord survives the data path."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from timm.data import create_loader
from timm.data.mixup import Mixup

from fan_stl.stl.mix_record import MixRecord
from fan_stl.stl.maskmix import MaskMix, MixPro
from fan_stl.stl.mix_method import MixMethod
from fan_stl.stl.mixing import STLCollateMixup, STLMixup
from fan_stl.stl.teacher import TeacherTokenLabeler
from fan_stl.stl.views import PairedViewDataset, PairedViewLoader, pair_views, split_views
from tests.stl_helpers import ColourDataset, PixelTeacher

MIX = dict(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.1, num_classes=4)
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
METHODS = {'mixup': dict(mixup_alpha=0.8, cutmix_alpha=0.), 'cutmix': dict(mixup_alpha=0., cutmix_alpha=1.),
           'maskmix': dict(method=MaskMix(cell=1), mixup_alpha=0., cutmix_alpha=1.)}


@pytest.mark.parametrize('seed', range(4))
def test_students_are_mixed_exactly_like_timm_and_teachers_not_at_all(seed):
    teacher, student = torch.rand(4, 3, 64, 64), torch.rand(4, 3, 64, 64)
    labels = torch.arange(4)
    np.random.seed(seed)
    mixed, packed = STLMixup(**MIX)(pair_views(teacher, student), labels)
    np.random.seed(seed)
    timm_student, timm_target = Mixup(**MIX)(student.clone(), labels)
    mixed_teacher, mixed_student = split_views(mixed)
    soft, record = MixRecord.unpack(packed, num_classes=4)
    assert torch.equal(mixed_teacher, teacher) and torch.equal(mixed_student, timm_student)
    torch.testing.assert_close(record.class_target(soft), timm_target)  # the packed soft target is each sample's own
    assert torch.equal(soft.argmax(1), labels)
    assert torch.equal(record.partner, torch.tensor([3, 2, 1, 0])) and record.shape == (4, 16)


def _colour_loader(prefetcher: bool, method: str):
    dataset = PairedViewDataset(ColourDataset(COLOURS, length=4, size=(64, 64)))
    mix = dict(METHODS[method], num_classes=4, label_smoothing=0.)
    loader = create_loader(
        dataset, input_size=(3, 64, 64), batch_size=4, is_training=True, use_prefetcher=prefetcher, num_workers=0,
        device=torch.device('cpu'), collate_fn=STLCollateMixup(**mix) if prefetcher else None, color_jitter=0.)
    if prefetcher:
        return PairedViewLoader(loader), None
    return loader, STLMixup(**mix)


def _mixed_colour_batch(prefetcher: bool, method: str, seed: int):
    """ One mixed paired batch `(input, target)` of the colour set, down the prefetcher path or the mixup_fn one. """
    loader, mixup_fn = _colour_loader(prefetcher, method)
    np.random.seed(seed)
    input, target = next(iter(loader))
    return (input, target) if mixup_fn is None else mixup_fn(input, target)


@pytest.mark.parametrize('prefetcher', [True, False])
@pytest.mark.parametrize('method', ['mixup', 'cutmix', 'maskmix'])
def test_record_survives_the_data_path_and_says_who_owns_each_pixel(prefetcher, method):
    input, target = _mixed_colour_batch(prefetcher, method, seed=3)
    assert input.shape == (4, 6, 64, 64)
    soft, record = MixRecord.unpack(target, num_classes=4)
    teacher, student = split_views(input)
    partner_view = teacher[record.partner]
    assert 0 < record.lam[0] < 1 and torch.equal(record.partner, torch.tensor([3, 2, 1, 0]))
    if method != 'mixup':  # every student pixel is its own or its partner's, and the record counts them per token
        own_pixels = (student - teacher).abs().amax(1) < 1e-4
        assert torch.all(own_pixels | ((student - partner_view).abs().amax(1) < 1e-4))
        torch.testing.assert_close(record.own, F.avg_pool2d(own_pixels[:, None].float(), 16).flatten(1))
        torch.testing.assert_close(record.lam, own_pixels.float().mean((1, 2)))
    else:  # a blend with the record's share everywhere (up to the uint8 rounding of the prefetcher path)
        assert torch.allclose(record.own, record.lam[:, None].expand(-1, 16))
        lam = record.lam[:, None, None, None]
        torch.testing.assert_close(student, lam * teacher + (1 - lam) * partner_view, atol=0.03, rtol=0)
    torch.testing.assert_close(soft.sum(1), torch.ones(4))


@pytest.mark.parametrize('prefetcher', [True, False])
@pytest.mark.parametrize('method', ['cutmix', 'maskmix'])
def test_followed_token_targets_are_the_pixel_owners(prefetcher, method):
    input, target = _mixed_colour_batch(prefetcher, method, seed=5)
    _, record = MixRecord.unpack(target, num_classes=4)
    teacher, student = split_views(input)
    labeler = TeacherTokenLabeler(PixelTeacher(), mode='argmax', smoothing=0.)
    blended = labeler(teacher).blend(record).dense()
    # the pixel owner: label every student pixel with the class of the clean image it came from, average per token
    clean_class = labeler(teacher).indices[:, 0, 0]
    own_pixels = (student - teacher).abs().amax(1) < 1e-4
    pixel_class = torch.where(own_pixels, clean_class[:, None, None], clean_class[record.partner][:, None, None])
    owners = F.avg_pool2d(F.one_hot(pixel_class, 3).permute(0, 3, 1, 2).float(), 16).flatten(2).transpose(1, 2)
    assert (record.own < 1).any()  # some tokens (partly) belong to the partner
    torch.testing.assert_close(blended, owners)


def test_disabled_and_unsupported_mixing():
    collate = STLCollateMixup(**MIX)
    collate.mixup_enabled = False  # as train.py's --mixup-off-epoch does
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    batch, packed = collate([((image, image.clone()), 1), ((image, image.clone()), 2)])
    soft, record = MixRecord.unpack(packed, num_classes=4)
    assert torch.equal(batch[2:], batch[:2]) and record.is_identity
    torch.testing.assert_close(soft[0], torch.tensor([0.025, 0.925, 0.025, 0.025]))
    with pytest.raises(ValueError, match="'half'"):
        STLMixup(mode='half', **MIX)
    with pytest.raises(ValueError, match='Unknown mix method .bogus.: pass a MixMethod'):
        STLMixup(method='bogus', **MIX)
    with pytest.raises(ValueError, match='PairedViewDataset'):
        STLCollateMixup(**MIX)([(image, 1), (image, 2)])
    with pytest.raises(ValueError, match='PairedViewDataset'):
        STLCollateMixup(paired=False, **MIX)([((image, image), 1), ((image, image), 2)])
    with pytest.raises(ValueError, match="pairing 'flip'"):
        STLMixup(mode='pair', method=MixMethod(pairing='perm'), **MIX)
    with pytest.raises(ValueError, match='--mixup-prob|--mixup and/or --cutmix'):
        STLMixup(method=MixPro(), mixup_alpha=0., cutmix_alpha=0., num_classes=4)
