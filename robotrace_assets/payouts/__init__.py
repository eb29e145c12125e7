"""Payouts: a rate card, per-segment payout state as append-only events, finance batches."""
