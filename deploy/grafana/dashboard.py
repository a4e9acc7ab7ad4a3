#!/usr/bin/env python3
"""Writes controlplane.json, the Grafana dashboard of the control plane, next to this script.

The panels are listed once below; the metric names are those Prometheus shows for the OpenTelemetry
instruments (dots become underscores, the unit is appended: _seconds, _milliseconds; counters end in
_total; histograms have _bucket, _sum and _count). tests/Observability.Tests checks that every name
used here is one a live Prometheus scraped. Run: python3 deploy/grafana/dashboard.py
"""
import json
import os

DS = {"type": "prometheus", "uid": "${datasource}"}

ROWS = [
    ("API", [
        ("API calls by method and code", "sum by (method, code) (rate(controlplane_api_calls_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
        ("API latency p99 by method", "histogram_quantile(0.99, sum by (le, method) (rate(controlplane_api_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
        ("API errors by method and code", "sum by (method, code) (rate(controlplane_api_calls_total{job=~\"$job\",code!=\"OK\"}[$__rate_interval]))", "reqps"),
    ]),
    ("Grains and storage", [
        ("Grain activations", "sum by (instance) (orleans_catalog_activations{job=~\"$job\"})", "short"),
        ("Commit batch size (mean)", "sum(rate(controlplane_store_commit_batch_size_sum{job=~\"$job\"}[$__rate_interval])) / sum(rate(controlplane_store_commit_batch_size_count{job=~\"$job\"}[$__rate_interval]))", "short"),
        ("Commits per second", "sum by (instance) (rate(controlplane_store_commit_duration_seconds_count{job=~\"$job\"}[$__rate_interval]))", "ops"),
        ("Commit latency p99", "histogram_quantile(0.99, sum by (le) (rate(controlplane_store_commit_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
    ]),
    ("Watch and convergence", [
        ("Watch streams", "sum by (instance) (controlplane_watch_streams{job=~\"$job\"})", "short"),
        ("Watch lag p99 (commit → send)", "histogram_quantile(0.99, sum by (le) (rate(controlplane_watch_lag_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
        ("Commit → programmed p99 by node", "histogram_quantile(0.99, sum by (le, node) (rate(controlplane_convergence_programmed_latency_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
        ("Changes not programmed everywhere", "sum(controlplane_convergence_changes_waiting{job=~\"$job\"})", "short"),
    ]),
    ("Node agents", [
        ("netlink apply p99 by node", "histogram_quantile(0.99, sum by (le, node) (rate(controlplane_agent_netlink_apply_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
        ("nf_tables apply p99 by node", "histogram_quantile(0.99, sum by (le, node) (rate(controlplane_agent_nftables_apply_duration_seconds_bucket{job=~\"$job\"}[$__rate_interval])))", "s"),
        ("Kernel passes per second by node", "sum by (node) (rate(controlplane_agent_netlink_apply_duration_seconds_count{job=~\"$job\"}[$__rate_interval])) + sum by (node) (rate(controlplane_agent_nftables_apply_duration_seconds_count{job=~\"$job\"}[$__rate_interval]))", "ops"),
        ("Policy entries by node", "sum by (node) (controlplane_agent_policy_entries{job=~\"$job\"})", "short"),
    ]),
    ("DNS", [
        ("DNS queries by type", "sum by (type) (rate(controlplane_dns_queries_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
        ("DNS responses by rcode", "sum by (rcode) (rate(controlplane_dns_queries_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
        ("DNS truncated responses", "sum(rate(controlplane_dns_truncated_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
        ("DNS queries dropped by reason", "sum by (reason) (rate(controlplane_dns_dropped_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
        ("DNS forwarding cache hit ratio", "sum(rate(controlplane_dns_cache_lookups_total{job=~\"$job\",result=\"hit\"}[$__rate_interval])) / sum(rate(controlplane_dns_cache_lookups_total{job=~\"$job\"}[$__rate_interval]))", "percentunit"),
        ("DNS rate-limit slips and refused recursion", "sum(rate(controlplane_dns_rate_limit_slipped_total{job=~\"$job\"}[$__rate_interval])) + sum(rate(controlplane_dns_forwarding_refused_total{job=~\"$job\"}[$__rate_interval]))", "reqps"),
    ]),
    ("Processes", [
        ("GC collections by instance", "sum by (instance) (rate(dotnet_gc_collections_total{job=~\"$job\"}[$__rate_interval]))", "ops"),
        ("Scrape targets up", "up{job=~\"$job\"}", "short"),
    ]),
]


def dashboard():
    panels, y, next_id = [], 0, 1
    for title, row in ROWS:
        panels.append({"type": "row", "title": title, "id": next_id, "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        next_id += 1
        y += 1
        for i, (name, expr, unit) in enumerate(row):
            panels.append({
                "type": "timeseries", "title": name, "id": next_id, "datasource": DS,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
                "targets": [{"refId": "A", "datasource": DS, "expr": expr, "legendFormat": "__auto"}],
            })
            next_id += 1
        y += 8 * ((len(row) + 1) // 2)
    return {
        "title": "Control plane", "uid": "controlplane", "schemaVersion": 39, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "10s", "tags": ["controlplane"],
        "templating": {"list": [
            {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}, "hide": 0},
            {"name": "job", "label": "Job", "type": "query", "datasource": DS, "query": "label_values(up, job)",
             "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "hide": 0},
        ]},
        "annotations": {"list": []},
        "panels": panels,
    }


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "controlplane.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dashboard(), f, indent=2, ensure_ascii=False)
        f.write("\n")
