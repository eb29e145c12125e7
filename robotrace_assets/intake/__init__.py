"""Intake: discovering envelopes and completed uploads in the bucket."""
