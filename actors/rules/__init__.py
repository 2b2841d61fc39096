"""rules actors and their pure logic."""
