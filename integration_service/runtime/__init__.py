"""The worker's session runtime: one loop thread, warm clients, leases, forwarding."""
