"""Micro-credentials as pure code: the document a completion earns (:mod:`.document`) and
its Ed25519 Data Integrity proof (:mod:`.signing`). Issuing, revoking and verifying against
the register are use cases in :mod:`services.catalogue.handlers.credentials`."""
