"""The people's pages: the learner's account on a phone and the monitoring dashboard.

A component of its own that owns no money and no person's data: it keeps sign-in
sessions, and reads and acts through the four services' public APIs with the signed-in
person's token (:mod:`services.portal.client`), so each service keeps ownership of its
data and its rules.
"""
