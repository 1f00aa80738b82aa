"""Who did something, as events and the ledger stream record it: a keyed hash of the caller
instead of the token's subject.

``agency:jane.doe@pes.fr`` becomes ``agency:p-<32 hex>``, an HMAC-SHA-256 of the whole actor
under the ``ILA_ACTOR_PEPPER`` secret: the same caller always gets the same pseudonym, so an
auditor can still tell that two actions were by the same person, but nobody without the
pepper can tell who. Actors that are no person's (``system:...``, ``cli:...``) and actors
already pseudonymous stay as they are, so re-publishing an event never hashes twice.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import overload

PEOPLE = frozenset({"agency", "provider", "learner", "auditor", "admin", "finance", "qa", "funder"})
PSEUDONYM = re.compile(r"[a-z]+:p-[0-9a-f]{32}")


@overload
def pseudonymous_actor(actor: str, pepper: str) -> str: ...
@overload
def pseudonymous_actor(actor: None, pepper: str) -> None: ...
def pseudonymous_actor(actor: str | None, pepper: str) -> str | None:
    """The pseudonym of a person's ``role:subject`` (other actors as they are)."""
    if actor is None or PSEUDONYM.fullmatch(actor):
        return actor
    role, sep, _ = actor.partition(":")
    if not sep or role not in PEOPLE:
        return actor
    digest = hmac.new(pepper.encode(), actor.encode(), hashlib.sha256).hexdigest()
    return f"{role}:p-{digest[:32]}"


def pseudonymous_subject(sub: str, pepper: str) -> str:
    """The pseudonym of a token's subject whatever role it acts in: what the four-eyes
    check compares so that one person cannot approve, in another role, what they proposed.
    It never leaves the database (events and answers name :func:`pseudonymous_actor`)."""
    digest = hmac.new(pepper.encode(), f"subject:{sub}".encode(), hashlib.sha256).hexdigest()
    return f"p-{digest[:32]}"
