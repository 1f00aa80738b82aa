"""The only place with SQL for the catalogue service."""
