"""checks actors and their pure logic."""
