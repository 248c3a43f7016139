"""Schemas of API v1."""
