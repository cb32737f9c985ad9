"""Test support: a programmable local HTTP server, a settable clock and the
newsroom that serves the seed article (and edits it between checks)."""
