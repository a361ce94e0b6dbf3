"""Jinja2 templates of the generated files (shipped as package data)."""
