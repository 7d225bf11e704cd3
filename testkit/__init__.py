"""Helpers shared by the test suite and `bench/`: loopback servers, process control,
fixtures. Tests never import `bench` and `bench` never imports a test module; what both
need lives here."""
