"""Buyer delivery: eligibility, signed export manifests, delivery methods, LeRobot export."""
