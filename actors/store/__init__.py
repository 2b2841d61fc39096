"""store actors and their pure logic."""
