"""The lock files pin everything pyproject.toml asks for: a dependency added to pyproject.toml
without `make lock` fails here, not on the next fresh machine."""

import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.paths import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)
HASHED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[^\n]*\\\n\s+--hash=sha256:[0-9a-f]{64}", re.M)


def pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    found = {canonicalize_name(n): v for n, v in PIN.findall(text)}
    assert len(HASHED.findall(text)) == len(found), f"{name}: every pin carries its hashes"
    return found


@pytest.mark.parametrize(
    ("lock", "requirements"),
    [
        ("requirements.lock", PROJECT["dependencies"]),
        (
            "requirements-test.lock",
            PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"],
        ),
    ],
)
def test_the_lock_pins_every_dependency_within_its_bounds(lock, requirements):
    pinned = pins(lock)
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{lock} lacks {name}: run `make lock`"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"{lock} pins {name}=={pinned[name]}, pyproject.toml wants {requirement.specifier}: "
            "run `make lock`"
        )


def test_the_image_gets_the_versions_the_tests_ran_with():
    runtime, tested = pins("requirements.lock"), pins("requirements-test.lock")
    assert {name: tested.get(name) for name in runtime} == runtime
    assert "pytest" not in runtime and "ruff" not in runtime
