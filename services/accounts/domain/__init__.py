"""The accounts rules, pure (no I/O): who may open an account, the lifecycle an account
goes through, its need profile, erasure, and the errors these rules raise.

``accounts`` holds the account state and its decisions (each takes the state and what is
asked, and returns the new state and the events to publish); ``identity`` the keyed hash of
a national id; ``errors`` the typed refusals.
"""
