#!/bin/sh
# Entry point of the origin service: the Compose secrets become environment
# variables of imgmod-origin (which reads secrets from its environment only,
# never from flags, so they are not on any command line), then it starts.
set -eu
SECRETS_DIR=${IMGMOD_SECRETS_DIR:-/run/secrets}
read_secret() { [ -f "$SECRETS_DIR/$1" ] && head -n 1 "$SECRETS_DIR/$1"; }
IMGMOD_S3_ACCESS_KEY=$(read_secret imgmod_s3_access_key)
IMGMOD_S3_SECRET_KEY=$(read_secret imgmod_s3_secret_key)
IMGMOD_REDIS_URL=$(read_secret imgmod_redis_url || true)
PGPASSWORD=$(read_secret origin_db_password)
export IMGMOD_S3_ACCESS_KEY IMGMOD_S3_SECRET_KEY IMGMOD_REDIS_URL PGPASSWORD
exec /usr/local/bin/imgmod-origin --listen 0.0.0.0 "$@"
