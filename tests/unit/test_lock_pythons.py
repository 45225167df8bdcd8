"""requirements.lock holds on every Python 3.11, not only on the one that wrote it: whatever a locked
package needs on some of them is pinned too (redis needs async-timeout below 3.11.3, and Debian 12's
Python is 3.11.2), or `pip install --require-hashes` stops there. Read from the installed packages'
metadata, which `make test` installs at the lock's versions."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock() -> dict[str, tuple[str, Marker | None]]:
    """name -> (version, marker) for every pin of the lock."""
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        pin = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;([^\\]+))?", line)
        if pin:
            pins[_name(pin[1])] = (pin[2], Marker(pin[3]) if pin[3] else None)
    return pins


def _applies(requirement: Requirement, environment: dict[str, str], extras: set[str]) -> bool:
    marker = requirement.marker
    return marker is None or any(marker.evaluate({**environment, "extra": e}) for e in extras or {""})


@pytest.mark.parametrize("python", ["3.11.0", "3.11.2", "3.11.16"])
def test_everything_the_locked_packages_need_on_that_python_is_pinned(python: str) -> None:
    environment = {**default_environment(), "python_full_version": python, "python_version": "3.11"}
    pins = _lock()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [(Requirement(r), {""}) for r in project["dependencies"]]
    missing: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        requirement, extras = wanted.pop()
        if not _applies(requirement, environment, extras):
            continue
        name = _name(requirement.name)
        version, marker = pins.get(name, ("", None))
        if not version or (marker is not None and not marker.evaluate(environment)):
            missing.add(name)
            continue
        if (name, frozenset(requirement.extras)) in seen:
            continue
        seen.add((name, frozenset(requirement.extras)))
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            continue  # pinned for another Python than this one: its own needs are not readable here
        assert installed.version == version, f"{name}: installed {installed.version}, locked {version}"
        wanted += [(Requirement(r), set(requirement.extras)) for r in installed.requires or []]
    assert not missing, f"not pinned for Python {python}: {sorted(missing)}"
