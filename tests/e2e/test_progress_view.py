"""The progress view on the running stack: the plugin as Airflow loads it, its API as each role of
the auth manager, and the page in Debian's Chromium updating while a load runs (no reload).

Screenshots (light and dark, 1280x800, inside Airflow's DAG page) land in the stack's folder under
``screenshots/``; the README's picture is one of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from devstack import airflow_stack
from devstack.screenshot import CHROMIUM_FLAGS
from devstack.services import query
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.stack

DAG = "dtaas_e2e_progress"
ORDERS = 120_000


def _token(stack: Stack, user: str) -> str:
    response = requests.post(
        f"{stack.cfg.api_url}/auth/token",
        json={"username": user, "password": airflow_stack.password(stack.cfg, user)},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def tokens(e2e_stack: Stack) -> dict[str, str]:
    return {user: _token(e2e_stack, user) for user in airflow_stack.USERS}


def _scrape(stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The DAG's samples at ``/dtaas/metrics``, by name and labels."""
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(f"{stack.cfg.api_url}/dtaas/metrics", timeout=30).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("dag_id") == DAG
    }


@pytest.fixture(scope="module")
def metrics_before(e2e_stack: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The scrape before this module's runs (the state store keeps earlier sessions' runs)."""
    e2e_stack.client.wait_for_dag(DAG)
    return _scrape(e2e_stack)


@pytest.fixture(scope="module")
def progress_run(e2e_stack: Stack, metrics_before: dict[Any, float]) -> str:
    """A run of the progress spec, started as soon as the DAG is parsed (tests watch it run)."""
    return e2e_stack.client.trigger(DAG)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=[f for f in CHROMIUM_FLAGS if f != "--headless"]
        )
        yield chromium
        chromium.close()


def _page(browser: Any, stack: Stack, token: str, scheme: str = "light") -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    context.add_cookies([{"name": "_token", "value": token, "url": stack.cfg.api_url}])
    return context.new_page()


def test_the_plugin_is_loaded_once_with_its_views_and_api(e2e_stack: Stack) -> None:
    plugins = [p for p in e2e_stack.client.get("plugins")["plugins"] if p["name"] == "dtaas"]
    assert len(plugins) == 1, "registered by the package's entry point only, not also from plugins/"
    views = {v["destination"]: v["href"] for v in plugins[0]["external_views"]}
    assert views == {
        "nav": "/dtaas/",
        "dag": "/dtaas/dags/{DAG_ID}",
        "dag_run": "/dtaas/dags/{DAG_ID}/runs/{RUN_ID}",
    }
    docs = requests.get(f"{e2e_stack.cfg.api_url}/dtaas/docs", timeout=30)
    assert docs.status_code == 200
    assert "/dtaas/openapi.json" in docs.text
    spec = requests.get(f"{e2e_stack.cfg.api_url}/dtaas/openapi.json", timeout=30).json()
    assert {
        "/api/transfers",
        "/api/dags/{dag_id}/runs/{run_id}",
        "/api/dags/{dag_id}/runs/{run_id}/stream",
        "/api/dags/{dag_id}/resync",
        "/api/dags/{dag_id}/runs/{run_id}/retry-failed",
        "/api/dags/{dag_id}/audit",
    } <= set(spec["paths"])


def test_rows_advance_in_the_browser_within_two_seconds_of_each_batch(
    e2e_stack: Stack, progress_run: str, tokens: dict[str, str], browser: Any
) -> None:
    page = _page(browser, e2e_stack, tokens["admin"])
    page.goto(f"{e2e_stack.cfg.api_url}/dtaas/dags/{DAG}/runs/{progress_run}")
    page.evaluate("window.__loadedOnce = true")
    row = page.locator('tr[data-table="dbo.orders"] td:nth-child(4)')
    shown: list[int] = []
    db_seen: dict[int, float] = {}  # rows in the state store -> when the test first saw them there
    latencies: list[float] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        now = time.monotonic()
        written = _orders_rows_in_store(e2e_stack, progress_run)
        if written is not None and written not in db_seen:
            db_seen[written] = now
        text = row.inner_text() if row.count() else ""
        value = int(text.split("/")[0].replace(",", "").strip() or 0) if text and text[0].isdigit() else 0
        if not shown or value != shown[-1]:
            if 0.3 * ORDERS < value < 0.8 * ORDERS and not any(
                0.3 * ORDERS < v < 0.8 * ORDERS for v in shown
            ):
                _screenshot_folder(e2e_stack).mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(_screenshot_folder(e2e_stack) / "progress-live.png"))
            shown.append(value)
            if value in db_seen:
                latencies.append(now - db_seen[value])
        if value == ORDERS and "success" in page.locator('tr[data-table="dbo.orders"]').inner_text():
            break
        time.sleep(0.1)
    assert page.evaluate("window.__loadedOnce === true"), "the page reloaded"
    advancing = [v for v in shown if 0 < v < ORDERS]
    assert len(advancing) >= 3, f"rows did not advance while the load ran: {shown}"
    assert advancing == sorted(advancing), shown
    assert shown[-1] == ORDERS, shown
    assert latencies, (shown, db_seen)
    assert max(latencies) < 2.0, latencies
    _screenshots(browser, e2e_stack, tokens["admin"], progress_run)


def _orders_rows_in_store(stack: Stack, run_id: str) -> int | None:
    rows = query(
        stack.cfg,
        stack.cfg.state_db,
        "SELECT SUM(c.rows_processed) FROM dtaas.chunk_progress c"
        " JOIN dtaas.executions e ON e.id = c.execution_id"
        " WHERE e.dag_id = %s AND e.run_id = %s AND c.source_table = 'dbo.orders'",
        (DAG, run_id),
    )
    return int(rows[0][0]) if rows and rows[0][0] is not None else None


def _screenshot_folder(stack: Stack) -> Any:
    return stack.cfg.state_dir / "screenshots"


def _screenshots(browser: Any, stack: Stack, token: str, run_id: str) -> None:
    folder = _screenshot_folder(stack)
    folder.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page = _page(browser, stack, token, scheme)
        page.goto(f"{stack.cfg.api_url}/dags/{DAG}/runs/{run_id}/plugin/dtaas-run")
        page.frame_locator("iframe").locator('tr[data-table="dbo.orders"]').wait_for(timeout=30_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(folder / f"progress-run-{scheme}.png"))
        page.goto(f"{stack.cfg.api_url}/plugin/dtaas-transfers")
        page.frame_locator("iframe").locator("table").wait_for(timeout=30_000)
        page.screenshot(path=str(folder / f"progress-transfers-{scheme}.png"))
        page.context.close()


def test_viewers_see_no_action_buttons(
    e2e_stack: Stack, progress_run: str, tokens: dict[str, str], browser: Any
) -> None:
    for user, buttons in (("viewer", 0), ("operator", 2)):
        page = _page(browser, e2e_stack, tokens[user])
        page.goto(f"{e2e_stack.cfg.api_url}/dtaas/dags/{DAG}/runs/{progress_run}")
        page.locator('tr[data-table="dbo.orders"]').wait_for(timeout=30_000)
        assert page.locator("button", has_text="Resync").count() == buttons, user
        page.context.close()


# (method, path, body) -> expected status per user; "anonymous" sends no credentials
READS = {"admin": 200, "operator": 200, "viewer": 200, "anonymous": 401}


def _call(stack: Stack, token: str | None, method: str, path: str, body: Any = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{stack.cfg.api_url}/dtaas/api/{path}"
    if path.endswith("/stream"):
        with requests.get(url, headers=headers, stream=True, timeout=30) as response:
            if response.status_code == 200:
                first = next(response.iter_lines(decode_unicode=True))
                assert first == "event: run"
            return response
    return requests.request(method, url, headers=headers, json=body, timeout=60)


@pytest.mark.parametrize("user", ["admin", "operator", "viewer", "anonymous"])
def test_every_endpoint_answers_each_role_as_the_auth_manager_says(
    e2e_stack: Stack, progress_run: str, tokens: dict[str, str], user: str
) -> None:
    assert e2e_stack.client.wait_for_run(DAG, progress_run) == "success"
    token = tokens.get(user)
    reads = [
        ("GET", "transfers"),
        ("GET", f"dags/{DAG}/runs/latest"),
        ("GET", f"dags/{DAG}/runs/{progress_run}"),
        ("GET", f"dags/{DAG}/runs/{progress_run}/stream"),
        ("GET", f"dags/{DAG}/audit"),
    ]
    for method, path in reads:
        assert _call(e2e_stack, token, method, path).status_code == READS[user], (user, path)
    may_act = user in ("admin", "operator")
    # authorized callers get past the permission check and meet the request's own problem
    expected = {"admin": 409, "operator": 409, "viewer": 403, "anonymous": 401}[user]
    retry = _call(e2e_stack, token, "POST", f"dags/{DAG}/runs/{progress_run}/retry-failed")
    assert retry.status_code == expected, retry.text
    expected = {"admin": 404, "operator": 404, "viewer": 403, "anonymous": 401}[user]
    unknown = _call(e2e_stack, token, "POST", f"dags/{DAG}/resync", {"table": "dbo.nope"})
    assert unknown.status_code == expected, unknown.text
    if may_act:
        view = _call(e2e_stack, token, "GET", f"dags/{DAG}/runs/{progress_run}").json()
        assert view["can_act"] is True
    elif token:
        view = _call(e2e_stack, token, "GET", f"dags/{DAG}/runs/{progress_run}").json()
        assert view["can_act"] is False


def test_an_operator_resyncs_one_table_in_a_new_audited_run(
    e2e_stack: Stack, progress_run: str, tokens: dict[str, str]
) -> None:
    assert e2e_stack.client.wait_for_run(DAG, progress_run) == "success"
    response = _call(e2e_stack, tokens["operator"], "POST", f"dags/{DAG}/resync", {"table": "dbo.customers"})
    assert response.status_code == 200, response.text
    run_id = response.json()["run_id"]
    run = e2e_stack.client.get(f"dags/{DAG}/dagRuns/{run_id}")
    assert run["conf"] == {"tables": ["dbo.customers"]}
    assert e2e_stack.client.wait_for_run(DAG, run_id) == "success"
    view = _call(e2e_stack, tokens["viewer"], "GET", f"dags/{DAG}/runs/{run_id}").json()
    assert [(t["table"], t["status"], t["rows_processed"]) for t in view["tables"]] == [
        ("dbo.customers", "success", 1000)
    ]
    audit = _call(e2e_stack, tokens["viewer"], "GET", f"dags/{DAG}/audit").json()
    entries = [(e["actor"], e["action"], e["run_id"], e["detail"]) for e in audit]
    assert ("operator", "resync", run_id, {"tables": ["dbo.customers"]}) in entries
    # begin_run records who started the run: Airflow's triggering user, here through our API
    assert ("operator", "trigger", run_id, {"run_type": "manual", "tables": ["dbo.customers"]}) in entries
    assert json.dumps(audit).count(tokens["operator"]) == 0  # no credential lands in the audit log


def test_prometheus_scrape_agrees_with_the_runs(
    e2e_stack: Stack, progress_run: str, metrics_before: dict[Any, float]
) -> None:
    """What this module's runs added: the progress run (orders and customers) and the operator's
    resync (customers only)."""
    assert e2e_stack.client.wait_for_run(DAG, progress_run) == "success"
    after = _scrape(e2e_stack)

    def added(name: str, *labels: tuple[str, str]) -> float:
        key = (name, tuple(sorted((("dag_id", DAG), *labels))))
        return after[key] - metrics_before.get(key, 0.0)

    spec = ("spec", "e2e_progress")
    assert added("dtaas_tasks_total", spec, ("status", "success")) == 2
    assert added("dtaas_table_rows_processed_total", ("table", "dbo.orders")) == ORDERS
    assert added("dtaas_table_rows_processed_total", ("table", "dbo.customers")) == 2 * 1000
    assert added("dtaas_table_failures_total", ("table", "dbo.orders")) == 0
    assert after[("dtaas_task_rows_processed", (("dag_id", DAG), spec))] == 1000  # the resync, last
