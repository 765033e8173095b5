#!/bin/bash
# keepalived health check of the data plane itself, not just of processes.
# Exit status (FAULT when failing): member-wide faults only: no tenants applied, ruleset not
# loaded, resolver dead. A tenant whose tunnel or ENI is not up is that tenant's problem: once
# broken for longer than TENANT_GRACE_SEC it counts in RUN/degraded, which keepalived's
# track_file takes off this member's priority, so the pair fails over only to a peer that is
# better off (see keepalived.conf). The grace lets ENIs be attached and detached around a
# document change, in either order, without any failover. A tenant whose devices come back
# gets its routes re-applied (RUN/reapply, read by crossvpc-reconcile).
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
fail() { echo "crossvpc-check: $*" >&2; exit 1; }
[ -e "$RUN/dataplane-ready" ] || fail "data plane not configured"
nft list table inet "$GATEWAY_NFT_TABLE" >/dev/null 2>&1 || fail "ruleset not loaded"
# Shell builtins only below (but for a tenant's first broken second): this runs every second
# with hundreds of devices, so no fork per device.
pid=""
read -r pid 2>/dev/null <"$RUN/resolver.pid" || true
kill -0 "$pid" 2>/dev/null || fail "resolver not running"
now=$EPOCHSECONDS
degraded=0
vni='' oper='' since=''
[ -d "$RUN/broken" ] || mkdir -p "$RUN/broken"
while tenant_next vni; do
  broken=''
  for dev in "$TUNNEL_DEV_PREFIX$vni" "$TENANT_DEV_PREFIX$vni"; do
    oper=missing
    read -r oper 2>/dev/null <"/sys/class/net/$dev/operstate" || true
    case "$oper" in up | unknown) ;; *) broken="$dev is $oper" ;; esac
  done
  mark=$RUN/broken/$vni
  if [ -z "$broken" ]; then
    if [ -e "$mark" ]; then
      # Back up after being down: the kernel dropped the routes through it, so ask
      # crossvpc-reconcile to re-apply (idempotent) rather than leave the tenant routeless.
      rm -f "$mark"
      : >"$RUN/reapply"
    fi
    continue
  fi
  since=''
  read -r since 2>/dev/null <"$mark" || { since=$now; echo "$now" >"$mark"; }
  if ((now - since >= TENANT_GRACE_SEC)); then
    degraded=$((degraded + 1))
    echo "crossvpc-check: vni $vni degraded for $((now - since))s: $broken" >&2
  fi
done <"$STATE/tenants.tsv"
# Written only on change: keepalived re-reads the file on every write.
old=''
read -r old 2>/dev/null <"$RUN/degraded" || true
[ "$old" = "$degraded" ] || echo "$degraded" >"$RUN/degraded"
exit 0
