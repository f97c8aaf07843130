#!/bin/sh
# Entry point of the edge service: writes the deployment's part of the VCL
# (where the origin is, who may purge), starts the capacity reporter beside
# varnishd, then runs varnishd in the foreground.
set -eu
SITE_DIR=/etc/imgmod/edge/site
mkdir -p "$SITE_DIR"
{
  echo 'vcl 4.1;'
  echo "backend imgmod_origin { .host = \"${IMGMOD_EDGE_BACKEND_HOST:-origin}\"; .port = \"${IMGMOD_EDGE_BACKEND_PORT:-8088}\"; .connect_timeout = 1s; .first_byte_timeout = 10s; .between_bytes_timeout = 5s; }"
  echo 'acl imgmod_purgers {'
  for a in ${IMGMOD_EDGE_PURGERS:-127.0.0.1}; do
    case "$a" in
      */*) echo "  \"${a%/*}\"/${a#*/};" ;;
      *) echo "  \"$a\";" ;;
    esac
  done
  echo '}'
} >"$SITE_DIR/imgmod-site.vcl"
if [ -f /run/secrets/origin_db_password ]; then
  PGPASSWORD=$(head -n 1 /run/secrets/origin_db_password)
  export PGPASSWORD
fi
IMGMOD_EDGE_WORKDIR=/var/lib/varnish/imgmod /usr/local/bin/edge-report.sh &
exec varnishd -F -n /var/lib/varnish/imgmod -a :6081 -T 127.0.0.1:6082 \
  -f /etc/imgmod/edge/imgmod.vcl -p vcl_path="$SITE_DIR:/etc/imgmod/edge" \
  -s "imgmod=malloc,${IMGMOD_EDGE_STORAGE:-256m}"
