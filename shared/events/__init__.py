"""Event schemas shared between services (payload models only; no domain logic)."""

from shared.events.base import Envelope, Event, UnknownEventType, event, model_for, registry

__all__ = ["Envelope", "Event", "UnknownEventType", "event", "load_all", "model_for", "registry"]


def load_all() -> None:
    """Import every event catalogue so that the registry is complete."""
    import importlib

    from shared.settings import SERVICES

    for module in SERVICES:
        try:
            importlib.import_module(f"shared.events.{module}")
        except ModuleNotFoundError as exc:  # a catalogue not written yet
            if exc.name != f"shared.events.{module}":
                raise
