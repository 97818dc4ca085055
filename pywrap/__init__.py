"""Mobile analytics backend: a PostgreSQL/TimescaleDB package with a thin GraphQL wrapper."""

__version__ = "0.1.0"
