"""`fan_stl.experiment`, the README's earlier path of the demo pipeline: a deprecated alias of
`fan_stl.demo.experiment`."""
import importlib
import sys

import pytest

import fan_stl.demo.experiment


def test_the_old_path_warns_and_is_the_moved_module(monkeypatch):
    monkeypatch.delitem(sys.modules, 'fan_stl.experiment', raising=False)
    with pytest.warns(DeprecationWarning, match='fan_stl.demo.experiment'):
        old = importlib.import_module('fan_stl.experiment')
    assert old is fan_stl.demo.experiment and old.run_experiment is fan_stl.demo.experiment.run_experiment
