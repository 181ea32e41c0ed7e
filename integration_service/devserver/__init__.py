"""The whole system on one machine, under honcho: what `make run` starts."""
