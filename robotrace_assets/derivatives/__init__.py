"""Review derivatives made from proven segments."""
