"""Support of the integration tier: each service's harness and request builders, one
module per service, imported by the tests and their conftest fixtures."""
