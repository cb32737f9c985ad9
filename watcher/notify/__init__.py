"""Telling people: which changes go where (routing), what a message says
(message), how it travels (channels) and how it gets there exactly once per
change, crashes included (deliver: the outbox worker)."""
