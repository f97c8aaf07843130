#!/bin/sh
# Runs once, when the postgres service initialises its data directory: the
# login role imgmod-origin connects as, with nothing but imgmod_cdn, and its
# password from the origin_db_password secret.
set -eu
password=$(head -n 1 /run/secrets/origin_db_password | sed "s/'/''/g")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE imgmod_origin LOGIN PASSWORD '$password' IN ROLE imgmod_cdn;
SQL
