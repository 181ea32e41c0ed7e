"""Session encryption and Redis lease suites."""
