"""Alerting on failed proof checks and crashed runs."""
