"""Words the public pages show for the catalogue's codes, in the reader's language.

The English labels are marked here for extraction (``N_``) and translated where they are
shown. ISCED-F names come from the UNESCO list; its broad fields are translated here, and a
detailed or narrow field without a translation is shown by its broad field's name (with
its code) rather than in English on a French or German page.
"""

from __future__ import annotations

from functools import lru_cache

from babel import Locale

from services.catalogue.domain import isced
from shared.i18n import N_, Localized

KINDS = {
    "training": N_("Training course"),
    "guidance": N_("Career guidance"),
    "validation": N_("Validation of skills"),
}
MODES = {"in_person": N_("In person"), "online": N_("Online"), "blended": N_("Blended")}
# the micro-credential's formOfParticipation
PARTICIPATION = {"onsite": N_("On site"), "online": N_("Online"), "blended": N_("Blended")}
BROAD_FIELDS = (
    N_("Generic programmes and qualifications"),
    N_("Education"),
    N_("Arts and humanities"),
    N_("Social sciences, journalism and information"),
    N_("Business, administration and law"),
    N_("Natural sciences, mathematics and statistics"),
    N_("Information and Communication Technologies (ICTs)"),
    N_("Engineering, manufacturing and construction"),
    N_("Agriculture, forestry, fisheries and veterinary"),
    N_("Health and welfare"),
    N_("Services"),
    N_("Field unknown"),
)


def mode_label(code: str, loc: Localized) -> str:
    return loc.gettext(MODES.get(code, code))


def participation_label(code: str, loc: Localized) -> str:
    return loc.gettext(PARTICIPATION.get(code, code))


def isced_label(code: str, loc: Localized) -> str:
    field = isced.lookup(code)
    if field is None:
        return code
    translated = loc.gettext(field.name)
    if translated != field.name or loc.locale == "en":
        return translated
    broad = isced.lookup(code[:2])
    return loc.gettext(broad.name) if broad else field.name


@lru_cache(maxsize=64)
def language_name(code: str, locale: str) -> str:
    """An ISO 639-1 language's name in ``locale`` ("fr" in German: "Französisch")."""
    name = Locale.parse(locale).languages.get(code.strip().lower())
    return name[:1].upper() + name[1:] if name else code.upper()
