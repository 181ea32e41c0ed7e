"""Helpers shared by test suites: processes and servers the tests start themselves."""
