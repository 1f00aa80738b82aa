"""The catalogue's public HTML pages (the registry and the credential check): one set of
templates, rendered in the reader's language through :class:`shared.i18n.Pages`."""

from __future__ import annotations

from pathlib import Path

from services.catalogue.api import labels
from services.catalogue.domain import isced
from shared import web
from shared.i18n import Pages

TEMPLATES = Path(__file__).resolve().parent / "templates"

PAGES = Pages(
    (TEMPLATES, web.TEMPLATES),
    globals={
        "kinds": labels.KINDS,
        "mode_label": labels.mode_label,
        "participation_label": labels.participation_label,
        "isced_label": labels.isced_label,
        "isced_name": isced.name_of,
        "language_name": labels.language_name,
    },
)
