"""Every file in invalid_specs/ must fail with exactly the messages listed in _expected.yaml.

Data-driven: add a case by adding a YAML file and its expected lines. Messages name the file,
the line and the key path, the way `dtaas lint` and the Airflow UI show them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from airflow_provider_dtaas.core.plan import plan_tables
from airflow_provider_dtaas.core.spec_loader import SpecError, load_spec, locate

CORPUS = Path(__file__).parent / "invalid_specs"
EXPECTED: dict[str, list[str]] = yaml.safe_load((CORPUS / "_expected.yaml").read_text(encoding="utf-8"))


def _messages(path: Path) -> list[str]:
    try:
        spec = load_spec(path, display_name=path.name)
        try:
            plan_tables(spec, spec_file=path.name)
        except SpecError as err:
            raise locate(err, path) from None
    except SpecError as err:
        return str(err).splitlines()
    return []


def test_the_corpus_is_large_and_every_file_has_an_expectation() -> None:
    files = {p.stem for p in CORPUS.glob("*.yaml") if not p.name.startswith("_")}
    assert len(files) >= 40
    assert files == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_spec_fails_with_its_exact_messages(name: str) -> None:
    assert _messages(CORPUS / f"{name}.yaml") == EXPECTED[name]
