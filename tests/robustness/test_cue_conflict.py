"""Shape bias on a tiny cue-conflict folder in model-vs-human's layout, worked out by hand."""
import pytest
from timm.data import ImageNetInfo

from fan_stl.robustness.cue_conflict import CATEGORIES, CATEGORY_INDICES
from fan_stl.robustness.evaluate import evaluate_robustness
from fan_stl.robustness.layouts import LayoutError
from fan_stl.robustness.sets import ExtraSets

from .evalsets_helpers import SETTINGS, ColourModel1k, make_folder

WORDS = {'airplane': 'airliner', 'bear': 'bear', 'bicycle': 'bicycle|bike', 'boat': 'boat|canoe|yawl',
         'bottle': 'bottle|jug',
         'car': 'car|wagon|convertible', 'cat': 'cat|cougar', 'chair': 'chair', 'clock': 'clock',
         'elephant': 'elephant', 'keyboard': 'keyboard', 'knife': 'cleaver', 'oven': 'rotisserie',
         'truck': 'truck|engine|van|pickup|wrecker|minivan'}


def test_categories_name_the_classes_they_hold():
    """ The only check available here of the 16-category lists: the ImageNet class names fit the category. """
    import re
    info = ImageNetInfo()
    assert len(CATEGORIES) == 16
    for category, pattern in WORDS.items():
        for index in CATEGORY_INDICES[category]:
            assert re.search(pattern, info.index_to_description(index), re.I), (category, index)
    assert all(151 <= i <= 268 for i in CATEGORY_INDICES['dog'])  # ImageNet's dog breeds
    everything = [i for v in CATEGORY_INDICES.values() for i in v]
    assert len(everything) == len(set(everything))


def test_shape_bias_by_hand(tmp_path):
    # red -> cat (281), green -> elephant (385), blue -> knife (499); scores are category means, so small
    # categories are used (a blue dog logit spread over ~110 dog classes would lose to elephant's 2)
    root = make_folder(tmp_path / 'cue', {
        'cat/cat1-elephant1.png': 'red',      # shape decision
        'cat/cat2-cat1.png': 'green',         # same shape and texture: left out
        'elephant/elephant1-cat2.png': 'red',  # texture decision
        'knife/knife1-bear1.png': 'green',    # neither
        'knife/knife2-bear2.png': 'blue',     # shape decision
    })
    results = evaluate_robustness(ColourModel1k((281, 385, 499)), 'm', tmp_path / 'out.json', settings=SETTINGS,
                                  extra=ExtraSets(cue_conflict=root))
    cue = results['cue_conflict']
    assert (cue['shape_decisions'], cue['texture_decisions'], cue['stimuli']) == (2, 1, 4)
    assert cue['shape_bias'] == pytest.approx(2 / 3)
    assert cue['per_category']['cat'] == 1.0 and cue['per_category']['elephant'] == 0.0
    assert cue['per_category']['knife'] == 1.0 and cue['per_category']['bear'] is None


@pytest.mark.parametrize('name, message', [
    ('cat/picture.png', 'do not parse'), ('cat/dog1-cat1.png', 'do not parse'),
    ('cat/cat1-unicorn1.png', 'do not parse'),
    ('cats/cat1-dog1.png', 'one folder per category')])
def test_bad_stimuli_names_are_refused_before_the_model_runs(tmp_path, name, message):
    root = make_folder(tmp_path / 'cue', {name: 'red'})
    model = ColourModel1k()
    with pytest.raises(LayoutError, match=message):
        evaluate_robustness(model, 'm', tmp_path / 'out.json', settings=SETTINGS, extra=ExtraSets(cue_conflict=root))
    assert not (tmp_path / 'out.json').exists()
