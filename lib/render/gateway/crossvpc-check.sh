#!/bin/bash
# keepalived health check of the data plane itself, not just of processes:
# ruleset loaded, resolver alive, every tunnel device and tenant ENI up.
set -uo pipefail
CONF=/etc/crossvpc
RUN=/run/crossvpc
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
fail() { echo "crossvpc-check: $*" >&2; exit 1; }
[ -e "$RUN/dataplane-ready" ] || fail "data plane not configured"
nft list table inet "$GATEWAY_NFT_TABLE" >/dev/null 2>&1 || fail "ruleset not loaded"
# Shell builtins only below: this runs every second with hundreds of devices, so no fork per device.
pid=""
read -r pid <"$RUN/resolver.pid" 2>/dev/null || true
kill -0 "$pid" 2>/dev/null || fail "resolver not running"
vni=''
while tenant_next vni; do
  for dev in "$TUNNEL_DEV_PREFIX$vni" "$TENANT_DEV_PREFIX$vni"; do
    state=missing
    read -r state <"/sys/class/net/$dev/operstate" 2>/dev/null || true
    case "$state" in up | unknown) ;; *) fail "$dev is $state" ;; esac
  done
done <"$CONF/tenants.tsv"
exit 0
