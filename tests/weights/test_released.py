"""The released-weights table and the model file's literal `default_cfgs` say the same thing, and the model file
does not import the weights layer."""
import ast
from pathlib import Path

import timm
from timm.models import get_pretrained_cfg

import fan_stl.models.fan as fan_models
from fan_stl.weights.released import RELEASED_WEIGHTS, released_tags, released_weight


def test_literal_default_cfgs_equal_the_released_table():
    registered = set(timm.list_pretrained('fan*'))
    assert registered == {name for w in RELEASED_WEIGHTS for name in (w.name, *w.aliases)}
    for name in registered:
        cfg, weight = get_pretrained_cfg(name), released_weight(name)
        assert cfg.hf_hub_id == weight.hub_repo
        assert (cfg.url or '') == weight.direct_url
        assert cfg.input_size == (3, weight.img_size, weight.img_size)
        assert (cfg.license == 'cc-by-nc-sa-4.0') == weight.is_stl
    for arch in {w.architecture for w in RELEASED_WEIGHTS}:  # the default tag is the table's first for each
        assert get_pretrained_cfg(arch).tag == released_tags(arch)[0]


def test_default_cfgs_are_written_out_literally():
    """ timm's convention: each tag's url / hf_hub_id visible in the model file, not generated from another layer. """
    source = Path(fan_models.__file__).read_text()
    for weight in RELEASED_WEIGHTS:
        for name in (weight.name, *weight.aliases):
            assert f"'{name}'" in source and f"hf_hub_id='{weight.hub_repo}'" in source
        if weight.direct_url:
            assert weight.direct_url.rsplit('/', 1)[1] in source


def test_model_file_imports_nothing_of_the_weights_layer():
    tree = ast.parse(Path(fan_models.__file__).read_text())
    imported = {n.module or '' for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not [m for m in imported if m.startswith('fan_stl') and not m.startswith('fan_stl.utils')]
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0
                and not (n.module or '').startswith('utils')]


def test_released_tags_of_long_and_short_names():
    assert released_tags('fan_t_hybrid_stl') == released_tags('fan_tiny_8_p4_hybrid_stl') == ('in1k',)
    assert released_tags('fan_base_16_p4_hybrid')[0] == 'in22k_ft_in1k'
    assert released_tags('fan_large_24_p16_224') == ()
