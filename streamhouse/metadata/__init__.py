"""The SQL metadata store: one async interface, SQLite and PostgreSQL backends."""
