"""fan_stl.stl is the method alone: it imports no driver (training), no robustness, no demo or command line."""
from pathlib import Path

from tests.test_import_graph import PACKAGE, _imports, _module_name

FORBIDDEN = {
    'fan_stl.stl': ('fan_stl.training', 'fan_stl.robustness', 'fan_stl.commands', 'fan_stl.cli', 'fan_stl.demo',
                    'fan_stl.experiment', 'fan_stl.train', 'fan_stl.validate', 'fan_stl.engine'),
    'fan_stl.training': ('fan_stl.commands', 'fan_stl.cli', 'fan_stl.demo', 'fan_stl.experiment'),
}


def _violations(package: str):
    modules = {_module_name(p) for p in PACKAGE.rglob('*.py')}
    root = PACKAGE.parent / Path(*package.split('.'))
    for path in sorted(root.rglob('*.py')):
        for target in sorted(_imports(path, modules)):
            if target.startswith(FORBIDDEN[package]):
                yield f'{_module_name(path)} imports {target}'


def test_stl_imports_no_driver_and_training_no_command_layer():
    found = [v for package in FORBIDDEN for v in _violations(package)]
    assert not found, found
