"""The only place with SQL for the accounts service: ``accounts`` holds the account rows
(opening, reading, lifecycle updates, lookup by national id hash), ``keys`` the personal
data keys and their destruction (erasure)."""
