"""Offline replay of a chat's LLM turns: rebuild, check, re-run with new settings."""
