"""Session lifecycle: the state machine and the jobs' domain functions."""
