#!/usr/bin/env python3
"""Parses OpenMetrics from stdin with prometheus_client's strict parser.

Prints one line per family (name type samples) and exits non-zero on any
parse error. Independent of the exporter's own code.
"""
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

text = sys.stdin.read()
try:
    for family in text_string_to_metric_families(text):
        print(f"{family.name} {family.type} {len(family.samples)}")
except Exception as e:  # the parser raises ValueError and friends
    print(f"invalid OpenMetrics: {e}", file=sys.stderr)
    sys.exit(1)
