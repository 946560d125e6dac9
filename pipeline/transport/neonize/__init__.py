"""WhatsApp through neonize (whatsmeow over FFI): import only when this transport is chosen.

Importing this package loads neonize's Go library, which installs a root log
handler unless one exists and prints to stdout; ``pipeline.cli`` imports it
after ``configure_logging`` and never for the stdio transport.
"""

from pipeline.transport.neonize._transport import NeonizeTransport, from_config

__all__ = ["NeonizeTransport", "from_config"]
