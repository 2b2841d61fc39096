"""The monitoring actors (checks, telemetry, rules, routing, notifiers, web) and their pure logic.

Import rule: `actors` imports nothing of `supervisor` but `supervisor.runtime`.
"""
