"""watcher: a news archival and change-monitoring daemon."""

__version__ = "0.1.0"
