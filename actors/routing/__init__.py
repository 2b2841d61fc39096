"""routing actors and their pure logic."""
