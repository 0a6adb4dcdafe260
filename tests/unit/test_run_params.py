from __future__ import annotations

import pytest

from airflow_provider_dtaas.core.run_params import RunParamError, check_requested, requested_tables, wanted


def test_no_parameter_means_every_table() -> None:
    assert requested_tables({}) is None
    assert requested_tables({"tables": []}) is None
    assert wanted("dbo.orders", None)


def test_names_are_compared_case_insensitively() -> None:
    requested = requested_tables({"tables": ["DBO.Orders "]})
    assert requested == {"dbo.orders"}
    assert wanted("dbo.ORDERS", requested)
    assert not wanted("dbo.customers", requested)


def test_unknown_names_are_refused_with_the_spec_tables() -> None:
    with pytest.raises(
        RunParamError, match=r"names dbo.nope, which spec s does not load; its tables are dbo.a"
    ):
        check_requested({"dbo.nope"}, ["dbo.a"], spec="s", has_patterns=False)
    check_requested({"dbo.nope"}, ["dbo.a"], spec="s", has_patterns=True)  # may be found by a pattern


def test_a_malformed_parameter_is_refused() -> None:
    with pytest.raises(RunParamError, match=r"must be a list of 'schema\.table' names"):
        requested_tables({"tables": [1, 2]})
