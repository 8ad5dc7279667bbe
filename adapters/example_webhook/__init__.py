"""Example adapter for a generic JSON webhook / SMS provider (see docs/adapters.md)."""
