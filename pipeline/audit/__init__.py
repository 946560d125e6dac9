"""``python -m pipeline audit``: what the bot said in a chat, to whom, and why."""
