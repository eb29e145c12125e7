"""Live teleop sessions: task briefs, LiveKit tokens and webhooks, the room lifecycle,
and the hand-off of Egress recordings into the Dagster graph. No web framework here."""
