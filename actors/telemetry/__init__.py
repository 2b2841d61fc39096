"""telemetry actors and their pure logic."""
