"""The ISCED-F 2013 fields of education and training, from the UNESCO code list shipped
beside this module in ``data/isced-f-2013.csv`` (broad 2-digit, narrow 3-digit and
detailed 4-digit codes). Reference data read once, never written: the rules that use it
stay pure."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "isced-f-2013.csv"
URI_BASE = "http://data.europa.eu/snb/isced-f/"


@dataclass(frozen=True)
class Field:
    code: str
    level: str
    name: str
    parent: str | None

    @property
    def uri(self) -> str:
        return URI_BASE + self.code


@lru_cache(maxsize=1)
def fields() -> dict[str, Field]:
    with DATA.open(newline="", encoding="utf-8") as f:
        return {
            row["code"]: Field(row["code"], row["level"], row["name"], row["parent"] or None)
            for row in csv.DictReader(f)
        }


def lookup(code: str) -> Field | None:
    return fields().get(code)


def broad_fields() -> list[Field]:
    return [f for f in fields().values() if f.level == "broad"]


def name_of(code: str) -> str:
    field = lookup(code)
    return field.name if field else code
