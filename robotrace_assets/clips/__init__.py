"""Clips: the reviewed training units cut from proven segments."""
