#!/bin/sh
# One database and one login role per service, each owning its database; the ledger's
# sessions run as ila_ledger_app (may append events, never change them), a role the ledger
# login holds. Passwords come from the environment (ILA_DB_PASSWORD_<SERVICE>).
set -eu
for service in accounts ledger catalogue payments; do
    var="ILA_DB_PASSWORD_$(echo "$service" | tr '[:lower:]' '[:upper:]')"
    eval "password=\${$var:?$var is not set}"
    psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres \
        -v role="$service" -v password="$password" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
CREATE DATABASE :"role" OWNER :"role";
REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
SQL
done
psql -v ON_ERROR_STOP=1 --username postgres --dbname postgres <<'SQL'
CREATE ROLE ila_ledger_app NOLOGIN;
GRANT ila_ledger_app TO ledger;
SQL
