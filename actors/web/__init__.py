"""web actors and their pure logic."""
