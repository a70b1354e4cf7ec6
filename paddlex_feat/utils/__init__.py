"""Shared helpers: errors, logging, atomic file writes, device selection, progress bars."""
