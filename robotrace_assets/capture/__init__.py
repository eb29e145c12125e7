"""Synthetic robot capture generation: camera video and end-effector trajectory logs."""
