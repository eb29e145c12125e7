"""Provider proof: the bytes in the store are exactly the bytes the envelope declares."""
