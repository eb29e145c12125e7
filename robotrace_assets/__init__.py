"""robotrace_assets: the Dagster code location that proves, reviews and delivers capture media."""
