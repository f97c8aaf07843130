# shellcheck shell=bash
# S3 for scripts/services.sh (sourced): Ceph RGW from Debian's packages.
#
# One mon, one bluestore OSD backed by a sparse file (so objects survive a full
# stop/start of all daemons), no mgr, auth none (with the ms_*_mode = crc
# settings, without which radosgw loops on "get_initial_auth_request returned
# -13"), pools of size 1, and radosgw's beast frontend on 127.0.0.1:$S3_PORT.
# RGW itself always verifies SigV4 signatures and payload hashes.
#
# Users and buckets (created once, remembered in $CEPH_DIR/credentials.env):
#   main store     user imgmod        bucket imgmod-main
#   hi-res store   user imgmod-hires  bucket imgmod-hires
#   health probe   user imgmod-probe  bucket imgmod-services-probe (status
#                  writes/reads an object there, not in the stores)
# Each bucket is owned by its user, so the other user's keys get 403.

S3_PORT=${IMGMOD_S3_PORT:-7480}
S3_REGION=${IMGMOD_S3_REGION:-us-east-1}
CEPH_MON_PORT=${IMGMOD_CEPH_MON_PORT:-3391}
CEPH_DIR=$SERVICES_DIR/ceph
CEPH_CONF=$CEPH_DIR/ceph.conf
RGW_NAME=client.rgw.imgmod
S3_PROBE_BUCKET=imgmod-services-probe
S3_PROBE_ACCESS_KEY=IMGMODPROBEKEY000001
S3_PROBE_SECRET_KEY=imgmod-probe-secret-0000000000000000000

# Credentials: the ones recorded when the users were created win, so that
# `env` always prints what the server has.
S3_BUCKET=${IMGMOD_S3_BUCKET:-imgmod-main}
S3_ACCESS_KEY=${IMGMOD_S3_ACCESS_KEY:-IMGMODMAINKEY0000001}
S3_SECRET_KEY=${IMGMOD_S3_SECRET_KEY:-imgmod-main-secret-00000000000000000000}
HIRES_BUCKET=${IMGMOD_HIRES_S3_BUCKET:-imgmod-hires}
HIRES_ACCESS_KEY=${IMGMOD_HIRES_S3_ACCESS_KEY:-IMGMODHIRESKEY000001}
HIRES_SECRET_KEY=${IMGMOD_HIRES_S3_SECRET_KEY:-imgmod-hires-secret-0000000000000000000}
# shellcheck disable=SC1091
[ -r "$CEPH_DIR/credentials.env" ] && . "$CEPH_DIR/credentials.env"

S3_ENDPOINT=http://127.0.0.1:$S3_PORT
EMPTY_SHA256=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

s3_install() { apt_ensure ceph-mon ceph-osd radosgw curl; }

ceph_cli() { as_svc timeout 30 ceph -c "$CEPH_CONF" --connect-timeout 10 "$@"; }
rgw_admin() { as_svc timeout 60 radosgw-admin -c "$CEPH_CONF" "$@"; }

ceph_write_conf() {
  local fsid
  fsid=$(cat "$CEPH_DIR/fsid")
  cat >"$CEPH_CONF" <<CONF
# written by scripts/services.sh
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$CEPH_MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
cluster network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
# auth none cannot negotiate msgr2 "secure" mode: without these radosgw
# loops on "send_auth_request get_initial_auth_request returned -13"
ms mon client mode = crc
ms client mode = crc
ms mon service mode = crc
ms mon cluster mode = crc
ms service mode = crc
ms cluster mode = crc
mon warn on insecure global id reclaim = false
mon warn on insecure global id reclaim allowed = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = $CEPH_DIR/run
admin socket = $CEPH_DIR/run/\$name.asok
log file = $CEPH_DIR/log/\$name.log
mon data = $CEPH_DIR/mon
osd data = $CEPH_DIR/osd
# bluestore on a sparse file: data survives an OSD restart (memstore does not)
osd objectstore = bluestore
bluestore block create = true
bluestore block size = 10737418240
bluestore cache autotune = false
bluestore cache size = 134217728
osd memory target = 939524096

[$RGW_NAME]
rgw frontends = beast endpoint=127.0.0.1:$S3_PORT
rgw data = $CEPH_DIR/rgw
rgw enable apis = s3, admin
CONF
}

ceph_mon_up() { ceph_cli mon stat; }
ceph_osd_active() { as_svc timeout 10 ceph -c "$CEPH_CONF" daemon osd.0 status 2>/dev/null | grep -q '"state": "active"'; }
rgw_http_up() { [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$S3_ENDPOINT/")" != 000 ]; }

# First start only: monmap, mon store, OSD id and bluestore.
ceph_init() {
  say "creating the Ceph cluster in $CEPH_DIR"
  rm -rf "$CEPH_DIR"
  make_dir "$CEPH_DIR" "$CEPH_DIR/mon" "$CEPH_DIR/osd" "$CEPH_DIR/run" "$CEPH_DIR/log" "$CEPH_DIR/rgw"
  cat /proc/sys/kernel/random/uuid >"$CEPH_DIR/fsid"
  ceph_write_conf
  as_svc monmaptool --create --addv a "[v2:127.0.0.1:$CEPH_MON_PORT]" --fsid "$(cat "$CEPH_DIR/fsid")" \
    "$CEPH_DIR/monmap" >/dev/null
  as_svc ceph-mon -c "$CEPH_CONF" --mkfs -i a --monmap "$CEPH_DIR/monmap" >>"$CEPH_DIR/log/init.log" 2>&1 \
    || die "ceph-mon --mkfs failed: $(tail -n 20 "$CEPH_DIR/log/init.log")"
  ceph_mon_start
  local osd_uuid
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  ceph_cli osd new "$osd_uuid" >>"$CEPH_DIR/log/init.log" 2>&1 || die "ceph osd new failed"
  as_svc ceph-osd -c "$CEPH_CONF" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$CEPH_DIR/log/init.log" 2>&1 \
    || die "ceph-osd --mkfs failed: $(tail -n 20 "$CEPH_DIR/log/init.log")"
  touch "$CEPH_DIR/initialized"
}

ceph_mon_start() {
  is_running ceph-mon ceph-mon && return 0
  port_free_or_die "$CEPH_MON_PORT" ceph-mon
  spawn ceph-mon "$CEPH_DIR/log/mon.out" ceph-mon -c "$CEPH_CONF" -i a -f
  wait_until 60 "ceph-mon start" "$CEPH_DIR/log/mon.a.log" ceph-mon ceph-mon -- ceph_mon_up
}

ceph_osd_start() {
  is_running ceph-osd ceph-osd && return 0
  spawn ceph-osd "$CEPH_DIR/log/osd.out" ceph-osd -c "$CEPH_CONF" -i 0 -f
  wait_until 120 "ceph-osd start" "$CEPH_DIR/log/osd.0.log" ceph-osd ceph-osd -- ceph_osd_active
}

rgw_start() {
  is_running radosgw radosgw && return 0
  port_free_or_die "$S3_PORT" radosgw
  spawn radosgw "$CEPH_DIR/log/rgw.out" radosgw -c "$CEPH_CONF" -n "$RGW_NAME" -f
  wait_until 120 "radosgw start" "$CEPH_DIR/log/$RGW_NAME.log" radosgw radosgw -- rgw_http_up
}

# s3_req ACCESS SECRET METHOD PATH [BODYFILE]: a SigV4-signed request (curl
# 7.88: x-amz-content-sha256 must be sent explicitly, and is then signed).
# Prints the HTTP status; the response body goes to $CEPH_DIR/last-response.
s3_req() {
  local ak=$1 sk=$2 method=$3 path=$4 body=${5:-} sha args=()
  if [ -n "$body" ]; then
    sha=$(sha256sum "$body" | cut -d' ' -f1)
    args=(-T "$body" -H 'Content-Type: application/octet-stream')
  else
    sha=$EMPTY_SHA256
  fi
  [ "$method" = HEAD ] && args+=(-I) || args+=(-X "$method")
  curl -s -m 30 -o "$CEPH_DIR/last-response" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$ak:$sk" \
    -H "x-amz-content-sha256: $sha" "${args[@]}" "$S3_ENDPOINT$path" || true
}

# s3_ensure_user UID ACCESS SECRET BUCKET: the user with exactly these keys,
# and its bucket, created with a signed PUT by that user.
s3_ensure_user() {
  local uid=$1 ak=$2 sk=$3 bucket=$4 code
  if ! rgw_admin user info --uid="$uid" >/dev/null 2>&1; then
    rgw_admin user create --uid="$uid" --display-name="$uid" --access-key="$ak" --secret-key="$sk" \
      >/dev/null || die "radosgw-admin user create $uid failed"
  fi
  code=$(s3_req "$ak" "$sk" HEAD "/$bucket")
  if [ "$code" = 404 ]; then
    code=$(s3_req "$ak" "$sk" PUT "/$bucket")
    [ "$code" = 200 ] || die "creating bucket $bucket as $uid: HTTP $code $(cat "$CEPH_DIR/last-response")"
    say "bucket $bucket created by user $uid (signed PUT)"
  elif [ "$code" != 200 ]; then
    die "bucket $bucket as $uid: HEAD gave HTTP $code"
  fi
}

s3_provision() {
  [ -f "$CEPH_DIR/provisioned" ] && return 0
  s3_ensure_user imgmod "$S3_ACCESS_KEY" "$S3_SECRET_KEY" "$S3_BUCKET"
  s3_ensure_user imgmod-hires "$HIRES_ACCESS_KEY" "$HIRES_SECRET_KEY" "$HIRES_BUCKET"
  s3_ensure_user imgmod-probe "$S3_PROBE_ACCESS_KEY" "$S3_PROBE_SECRET_KEY" "$S3_PROBE_BUCKET"
  # Each store's keys must not open the other store, and a wrong secret fails.
  local c1 c2 c3
  c1=$(s3_req "$S3_ACCESS_KEY" "$S3_SECRET_KEY" HEAD "/$HIRES_BUCKET")
  c2=$(s3_req "$HIRES_ACCESS_KEY" "$HIRES_SECRET_KEY" HEAD "/$S3_BUCKET")
  c3=$(s3_req "$S3_ACCESS_KEY" "not-the-secret" HEAD "/$S3_BUCKET")
  [ "$c1$c2$c3" = 403403403 ] || die "credential isolation check failed (HTTP $c1 $c2 $c3, want 403 403 403)"
  say "checked: other store's keys and a wrong secret get HTTP 403"
  cat >"$CEPH_DIR/credentials.env" <<ENV
S3_BUCKET=$(printf %q "$S3_BUCKET")
S3_ACCESS_KEY=$(printf %q "$S3_ACCESS_KEY")
S3_SECRET_KEY=$(printf %q "$S3_SECRET_KEY")
HIRES_BUCKET=$(printf %q "$HIRES_BUCKET")
HIRES_ACCESS_KEY=$(printf %q "$HIRES_ACCESS_KEY")
HIRES_SECRET_KEY=$(printf %q "$HIRES_SECRET_KEY")
ENV
  touch "$CEPH_DIR/provisioned"
  own_tree "$CEPH_DIR"
}

s3_start() {
  if is_running radosgw radosgw && is_running ceph-osd ceph-osd && is_running ceph-mon ceph-mon \
    && [ -f "$CEPH_DIR/provisioned" ]; then
    say "s3 already running"
    return 0
  fi
  s3_install
  local t0
  t0=$(now)
  if [ ! -f "$CEPH_DIR/initialized" ]; then
    is_running ceph-mon ceph-mon && die "a ceph-mon from an unfinished set-up is running: run '$0 destroy s3'"
    ceph_init
  else
    ceph_write_conf
    own_tree "$CEPH_CONF"
  fi
  ceph_mon_start
  ceph_osd_start
  rgw_start
  s3_provision
  say "s3 (ceph mon+osd+radosgw) ready on $S3_ENDPOINT in $(elapsed "$t0")s"
}

# Stops only the gateway; mon and OSD (and so all objects) stay up.
rgw_stop() { stop_pid radosgw radosgw 30; }

# Stops radosgw first (it hangs for minutes on SIGTERM without its OSD), then
# the OSD, then the mon.  Objects are kept in $CEPH_DIR/osd/block.
s3_stop() {
  rgw_stop
  stop_pid ceph-osd ceph-osd 60
  stop_pid ceph-mon ceph-mon 30
}

s3_status() {
  local mon osd rgw
  mon=$(read_pid ceph-mon ceph-mon) || mon=-
  osd=$(read_pid ceph-osd ceph-osd) || osd=-
  rgw=$(read_pid radosgw radosgw) || rgw=-
  local pids="pids mon=$mon osd=$osd rgw=$rgw"
  if [ "$rgw" = - ]; then
    if [ "$mon$osd" != -- ]; then
      echo "s3: stopped (radosgw down, ceph backend still up)  $pids  $S3_ENDPOINT"
    else
      echo "s3: stopped  $S3_ENDPOINT"
    fi
    return 1
  fi
  if [ ! -f "$CEPH_DIR/provisioned" ]; then
    echo "s3: UNHEALTHY  $pids  $S3_ENDPOINT  users/buckets not created yet"
    return 1
  fi
  # Health: signed PUT + GET round trip of a probe object (in the probe
  # bucket, so the stores stay untouched) and a signed HEAD of both stores.
  local probe="$CEPH_DIR/probe.bin" got="$CEPH_DIR/probe.got" c1 c2 c3 c4
  head -c 64 /dev/urandom >"$probe"
  c1=$(s3_req "$S3_PROBE_ACCESS_KEY" "$S3_PROBE_SECRET_KEY" PUT "/$S3_PROBE_BUCKET/probe.bin" "$probe")
  c2=$(s3_req "$S3_PROBE_ACCESS_KEY" "$S3_PROBE_SECRET_KEY" GET "/$S3_PROBE_BUCKET/probe.bin")
  cp "$CEPH_DIR/last-response" "$got" 2>/dev/null || true
  c3=$(s3_req "$S3_ACCESS_KEY" "$S3_SECRET_KEY" HEAD "/$S3_BUCKET")
  c4=$(s3_req "$HIRES_ACCESS_KEY" "$HIRES_SECRET_KEY" HEAD "/$HIRES_BUCKET")
  if [ "$c1$c2$c3$c4" = 200200200200 ] && cmp -s "$probe" "$got"; then
    echo "s3: running  $pids  $S3_ENDPOINT  signed PUT+GET probe ok, HEAD $S3_BUCKET/$HIRES_BUCKET ok"
    return 0
  fi
  echo "s3: UNHEALTHY  $pids  $S3_ENDPOINT  PUT=$c1 GET=$c2 HEAD main=$c3 hires=$c4"
  return 1
}

s3_env() {
  local v
  for v in "IMGMOD_S3_ENDPOINT=$S3_ENDPOINT" "IMGMOD_S3_REGION=$S3_REGION" \
    "IMGMOD_S3_BUCKET=$S3_BUCKET" "IMGMOD_S3_ACCESS_KEY=$S3_ACCESS_KEY" "IMGMOD_S3_SECRET_KEY=$S3_SECRET_KEY" \
    "IMGMOD_HIRES_S3_ENDPOINT=$S3_ENDPOINT" "IMGMOD_HIRES_S3_BUCKET=$HIRES_BUCKET" \
    "IMGMOD_HIRES_S3_ACCESS_KEY=$HIRES_ACCESS_KEY" "IMGMOD_HIRES_S3_SECRET_KEY=$HIRES_SECRET_KEY"; do
    printf 'export %s=%q\n' "${v%%=*}" "${v#*=}"
  done
}

s3_destroy() {
  s3_stop
  rm -rf "$CEPH_DIR"
  say "s3 (ceph) data wiped"
}
