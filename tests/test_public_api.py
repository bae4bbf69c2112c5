"""The package's top level: every public name resolves to its home module's object, and
``import influrec`` alone loads nothing heavy (the names are imported on first use)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import influrec


def test_every_exported_name_is_its_home_modules_object() -> None:
    exports = influrec._EXPORTS
    assert set(influrec.__all__) == {"__version__", *exports}
    for name, module in exports.items():
        assert getattr(influrec, name) is getattr(importlib.import_module(module), name), name
    assert set(influrec.__all__) <= set(dir(influrec))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Recomender'"):
        influrec.Recomender  # noqa: B018
    with pytest.raises(ImportError, match="Recomender"):
        exec("from influrec import Recomender", {})


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys, influrec\n"
        "heavy = ('torch', 'numpy', 'pyarrow', 'influrec.data')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(influrec.__version__, heavy)\n"
        "influrec.Recommender\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == [f"{influrec.__version__} []", "True"]
