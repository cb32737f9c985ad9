"""Store tests use the shared database fixtures of ``tests/conftest.py``
(``db_url``, ``store``, ``dialect``, ``pg_url``): every test runs on SQLite and
on PostgreSQL."""
