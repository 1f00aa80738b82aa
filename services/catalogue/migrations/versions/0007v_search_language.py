"""Each course keeps the text-search configuration of its language (``search_config``), so
that a query is parsed with the stemmer the course was indexed with: a French query
"formations" finds a French course titled "Formation ...". The vectors were already built
in each course's language; only the configuration's name is added, from the same mapping
as :data:`services.catalogue.store.courses.TS_CONFIGS` had when this ran.

Revision ID: 0007v
"""

from alembic import op

revision = "0007v"
down_revision = "0006r"
branch_labels = None
depends_on = None

TS_CONFIGS = {
    "ar": "arabic", "ca": "catalan", "da": "danish", "de": "german", "el": "greek",
    "en": "english", "es": "spanish", "eu": "basque", "fi": "finnish", "fr": "french",
    "ga": "irish", "hu": "hungarian", "hy": "armenian", "id": "indonesian", "it": "italian",
    "lt": "lithuanian", "nl": "dutch", "no": "norwegian", "pt": "portuguese",
    "ro": "romanian", "ru": "russian", "sr": "serbian", "sv": "swedish", "tr": "turkish",
}  # fmt: skip


def upgrade() -> None:
    # text, not regconfig: a reg* column would stop pg_upgrade (OIDs are not kept)
    op.execute(
        "ALTER TABLE catalogue.courses ADD COLUMN search_config text NOT NULL "
        "DEFAULT 'simple' CHECK (search_config ~ '^[a-z_]{1,63}$')"
    )
    cases = " ".join(f"WHEN '{code}' THEN '{name}'" for code, name in TS_CONFIGS.items())
    op.execute(
        "UPDATE catalogue.courses SET search_config = "
        f"CASE lower(language) {cases} ELSE 'simple' END"
    )
    op.execute("ALTER TABLE catalogue.courses ALTER COLUMN search_config DROP DEFAULT")


def downgrade() -> None:
    op.execute("ALTER TABLE catalogue.courses DROP COLUMN search_config")
