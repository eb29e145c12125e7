"""Media sessions: provenance and the rollup of their segments."""
