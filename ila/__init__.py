"""The composition root and the development tools: the ``ila`` command (:mod:`ila.cli`),
the service registry, the embedded PostgreSQL server and the local Kafka broker.

Nothing in ``shared/`` or ``services/*/`` (but their command-line modules) imports from
here: the services run on the kernel and are handed their database URL and bus.
"""
