"""How the daemon ends, for its supervisor: the exit statuses beyond 0 (stopped) and 2 (usage)."""

# WhatsApp needs a human (pairing, logout, session taken over): restarting will not help.
EXIT_NEEDS_OWNER = 3
# The lease was lost to another daemon: systemd restarts this one, which then waits as a standby.
EXIT_LEASE_LOST = 4
