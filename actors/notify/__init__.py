"""notify actors and their pure logic."""
