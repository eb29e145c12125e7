"""Segments and their multipart parts."""
