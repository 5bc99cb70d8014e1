"""benchmarks/throughput.py: the official NVlabs/STL code loaded beside fan_stl's models (when FAN_STL_OFFICIAL_DIR
names a checkout of github.com/NVlabs/STL), a clear error for a wrong folder, and the --model-kwargs parsing."""
import os
import sys
from pathlib import Path

import pytest
import timm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / 'benchmarks'))

import throughput  # noqa: E402

OFFICIAL_DIR = os.environ.get('FAN_STL_OFFICIAL_DIR')


@pytest.mark.skipif(not OFFICIAL_DIR, reason='set FAN_STL_OFFICIAL_DIR to a checkout of github.com/NVlabs/STL')
def test_official_code_loads_beside_ours():
    official = throughput.load_official(Path(OFFICIAL_DIR))
    entrypoint = timm.models._registry._model_entrypoints['fan_small_12_p4_hybrid']
    assert entrypoint.__module__.startswith('fan_stl')  # ours stays registered under the shared name
    pair = throughput.build_pair('fan_tiny_8_p4_hybrid', official)
    assert pair['official'].__class__.__module__.startswith(throughput.OFFICIAL_PACKAGE)
    assert pair['max_abs_diff'] < 1e-4




def test_official_dir_must_hold_the_models_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='NVlabs/STL'):
        throughput.load_official(tmp_path)


def test_model_kwargs_are_python_literals(capsys):
    parser = throughput.build_parser()
    assert throughput._keyword(parser, 'stem_depths=(1,1)') == ('stem_depths', (1, 1))
    assert throughput._keyword(parser, 'act=gelu') == ('act', 'gelu')
    with pytest.raises(SystemExit):
        throughput._keyword(parser, 'depth')
    assert 'KEY=VALUE' in capsys.readouterr().err
