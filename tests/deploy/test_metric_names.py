"""Alert rules and dashboard query only metrics the code (or RabbitMQ, Flower) exports."""

from __future__ import annotations

import pytest

from tests.deploy.loading import alert_rules, dashboard_exprs
from tests.deploy.promql_names import code_metric_names, is_known, metric_names_in

# Families the dashboard must show (deploy brief: jobs, leases, pool, sends, store).
DASHBOARD_MUST_SHOW = {
    "celery_tasks_total",
    "celery_task_duration_seconds_bucket",
    "celery_tasks_error_total",
    "session_lock_acquired_total",
    "session_lock_steal_total",
    "session_lock_lost_total",
    "session_pool_clients",
    "session_get_client_latency_seconds_bucket",
    "telegram_messages_sent_total",
    "telegram_messages_error_total",
    "session_save_errors_total",
    "session_state_transitions_total",
    "rabbitmq_queue_messages",
    # Inbound (issue 12): the feed, the relay, webhooks, placement.
    "inbound_events_total",
    "inbound_event_lag_seconds_bucket",
    "events_published_total",
    "event_relay_backlog",
    "webhook_deliveries_total",
    "webhook_delivery_seconds_bucket",
    "listening_sessions",
    "listening_sessions_unowned",
    "session_gaps_total",
}


@pytest.fixture(scope="module")
def code_names() -> set[str]:
    names = code_metric_names()
    assert len(names) > 20, "metric constructors not found in the code"
    return names


def test_extractor_finds_metrics_not_functions_or_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, task) (rate(a_seconds_bucket{task=~"x.*"}'
        "[$__rate_interval]))) / on() group_left sum without (queue) (b_total offset 1h)"
        " and max_over_time(sum(c_gauge)[6h:5m]) > 0 or vector(0)"
    )
    assert metric_names_in(expr) == {"a_seconds_bucket", "b_total", "c_gauge"}


def test_code_names_carry_prometheus_client_suffixes(code_names: set[str]) -> None:
    # A counter declared with or without _total is exported once with it.
    assert "celery_tasks_total" in code_names
    assert "session_lock_acquired_total" in code_names
    assert "celery_task_duration_seconds_bucket" in code_names
    assert "celery_task_duration_seconds" not in code_names
    assert "session_pool_clients" in code_names


def test_alert_expressions_use_existing_metrics(code_names: set[str]) -> None:
    unknown = {
        (rule["alert"], name)
        for rule in alert_rules()
        for name in metric_names_in(rule["expr"])
        if not is_known(name, code_names)
    }
    assert unknown == set()


def test_dashboard_queries_use_existing_metrics(code_names: set[str]) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 20
    unknown = {
        name for expr in exprs for name in metric_names_in(expr) if not is_known(name, code_names)
    }
    assert unknown == set()


def test_dashboard_shows_the_required_families() -> None:
    used = {name for expr in dashboard_exprs() for name in metric_names_in(expr)}
    assert used >= DASHBOARD_MUST_SHOW, DASHBOARD_MUST_SHOW - used
