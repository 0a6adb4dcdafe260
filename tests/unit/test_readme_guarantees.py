"""The README's Guarantees name the tests that prove them: every file and test it names exists."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT


def test_every_test_a_guarantee_names_exists() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Guarantees", 1)[1].split("\n## ", 1)[0]
    files = set(re.findall(r"tests/[\w/]+\.py", section))
    tests = set(re.findall(r"\b(test_\w+)\b", section)) - {p.rsplit("/", 1)[1][:-3] for p in files}
    assert files
    assert len(tests) >= 15
    for path in files:
        assert (REPO_ROOT / path).is_file(), path
    defined = {
        name
        for path in (REPO_ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), flags=re.M)
    }
    assert sorted(tests - defined) == []
