"""What the bot does: turns events into LLM calls and replies."""
