"""Whatever YAML a user writes, the loader answers with a spec or a SpecError, never a crash."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_dtaas.core.spec import TaskSpec
from airflow_provider_dtaas.core.spec_loader import SpecError, parse_spec
from tests.unit.test_spec_loader import VALID

_KEYS = st.sampled_from(
    [
        "name",
        "source",
        "destinations",
        "tables",
        "s3",
        "snowflake",
        "conn_id",
        "bucket",
        "schema",
        "database",
        "batch_rows",
        "schedule",
        "row_filter",
        "columns",
        "include",
        "password",
        "mode",
        "cron",
        "x",
    ]
)
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30))
_DOCUMENTS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_KEYS | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)


def _load(text: str) -> None:
    problems = []
    try:
        spec = parse_spec(text, display_name="fuzz.yaml")
    except SpecError as err:  # the only exception the loader may raise
        problems = err.problems
        assert problems, "a SpecError must carry at least one problem"
    else:
        assert isinstance(spec, TaskSpec)
    assert all(str(p).startswith("fuzz.yaml") for p in problems)


@settings(max_examples=300, deadline=None)
@given(_DOCUMENTS)
def test_any_document_gives_a_spec_or_a_spec_error(document: object) -> None:
    _load(yaml.safe_dump(document, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=len(VALID) - 1), st.text(max_size=10))
def test_a_valid_spec_with_an_edit_gives_a_spec_or_a_spec_error(position: int, insert: str) -> None:
    _load(VALID[:position] + insert + VALID[position:])
