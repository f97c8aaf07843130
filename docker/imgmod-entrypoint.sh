#!/bin/sh
# Entry point of the imgmod PostgreSQL image: turns the Compose secrets
# mounted under /run/secrets (one file per setting, named imgmod_<setting>)
# into a configuration file that postgresql.conf includes, readable by the
# server's user only, then hands over to the image's own entry point.
# Secrets given with `-c` would be on the postmaster's command line, which
# every local user can read (ps, /proc/*/cmdline).
set -eu

SECRETS_DIR=${IMGMOD_SECRETS_DIR:-/run/secrets}
CONF=/etc/imgmod/secrets.conf

mkdir -p /etc/imgmod
umask 077
tmp=$(mktemp "$CONF.XXXXXX")
echo "# written at container start by imgmod-entrypoint.sh from $SECRETS_DIR" >"$tmp"
for file in "$SECRETS_DIR"/imgmod_*; do
  [ -f "$file" ] || continue
  setting="imgmod.${file##*/imgmod_}"
  # one line, single quotes doubled as postgresql.conf wants
  value=$(head -n 1 "$file" | sed "s/'/''/g")
  printf "%s = '%s'\n" "$setting" "$value" >>"$tmp"
done
chown postgres:postgres "$tmp"
mv "$tmp" "$CONF"

exec docker-entrypoint.sh "$@"
