"""Targets: functions from a resolved schema to the text of generated files."""
