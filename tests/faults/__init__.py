"""Crash-anywhere and full-disk tests: SIGKILL at progress points, resume, compare; ENOSPC handling."""
