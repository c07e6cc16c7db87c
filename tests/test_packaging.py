"""Every package of the source tree is in the distribution, with its data files.

An editable install (`pip install -e .`, what the README and CI use) maps `xinlian.hub` onto
`hub/` and finds a package even when pyproject.toml forgets it; a wheel (`pip install .`, a
deployment) ships only the packages listed. This test keeps the list whole.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_with_an_init_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    listed = set(config["packages"])
    mapped = {directory: name for name, directory in config["package-dir"].items()}
    found = set()
    for top, name in mapped.items():
        for init in (ROOT / top).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / top)
            found.add(".".join([name, *relative.parts]))
    assert found - listed == set(), "packages missing from [tool.setuptools] packages in pyproject.toml"


def test_data_files_are_declared() -> None:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["package-data"]
    assert "*.toml" in data["xinlian.policies"]  # default.toml, credit.toml
    assert "calendars/*.toml" in data["xinlian.hub.cases"]
    assert list((ROOT / "hub" / "cases" / "calendars").glob("*.toml"))
