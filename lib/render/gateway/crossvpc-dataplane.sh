#!/bin/bash
# crossvpc gateway data plane, the member-wide part: underlay, sysctls, daemon configs,
# base policy rules. Then the tenants of the last pair document this member applied (kept
# in STATE across reboots), if any; crossvpc-reconcile applies newer ones.
# Idempotent: every step replaces rather than adds, so a re-run or a restart
# after a crash converges to the same state.
set -euo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
log() { echo "crossvpc-dataplane: $*" >&2; }
mkdir -p "$RUN" "$STATE"
rm -f "$RUN/dataplane-ready"

# wait_for <seconds> <what> <command...>: ENIs are hot-plugged after boot.
wait_for() {
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@"; do
    if ((SECONDS >= deadline)); then
      log "timed out waiting for $what"
      return 1
    fi
    sleep 1
  done
}
# awk reads to the end: exiting at the match would kill `ip` by SIGPIPE (a pipefail failure) once
# the listing outgrows the pipe, with dozens of tenant ENIs.
if_by_ip() { ip -o -4 addr show | awk -v ip="$1" '!dev { split($4, a, "/"); if (a[1] == ip) dev = $2 } END { if (dev) print dev }'; }

underlay=""
find_underlay() { underlay=$(if_by_ip "$SELF_IP"); [ -n "$underlay" ]; }
wait_for 300 "the primary interface holding $SELF_IP" find_underlay
echo "$underlay" >"$RUN/underlay"
log "underlay interface $underlay"
# GRO on the underlay (ENA's default, made explicit): tunnel frames arrive at most an MTU each;
# GRO merges them before the per-packet work (conntrack, rules, decapsulation).
ethtool -K "$underlay" gro on || log "could not turn GRO on for $underlay: tunnel traffic is processed frame by frame"

modprobe nf_conntrack 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1 \
  net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
  net.ipv4.conf.all.src_valid_mark=1 \
  net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
  net.netfilter.nf_conntrack_tcp_be_liberal=1 net.netfilter.nf_conntrack_tcp_loose=0
# Global, not per namespace: refused inside a container or network namespace; not fatal.
sysctl -qw net.netfilter.nf_conntrack_max="$CONNTRACK_MAX" 2>/dev/null || log "could not set nf_conntrack_max (not the initial network namespace?)"

sed "s/@UNDERLAY_IF@/$underlay/g" "$CONF/keepalived.conf.in" >"$RUN/keepalived.conf"
sed "s/@UNDERLAY_IF@/$underlay/g" "$CONF/conntrackd.conf.in" >"$RUN/conntrackd.conf"

# tcp_loose=0: only synced sessions survive a failover; never pick up strangers mid-stream.
# Encapsulated packets inherit the tenant fwmark; they must route by the main table.
# (Rules matched in a variable: `ip rule | grep -q` under pipefail fails when grep quits early.)
rules=$(ip rule show)
[[ $rules == *"90:"*"iif lo lookup main"* ]] || ip rule add pref 90 iif lo lookup main
# Unmarked packets (tunnel underlay, VRRP, sync) skip the per-tenant rules entirely.
[[ $rules == *"91:"*"fwmark 0/$TENANT_MARK_MASK lookup main"* ]] || ip rule add pref 91 fwmark "0/$TENANT_MARK_MASK" lookup main

if [ -r "$STATE/tenants.tsv" ] && [ -r "$STATE/ruleset.nft" ]; then
  "$CONF/bin/crossvpc-apply"
else
  log "no pair document applied yet: crossvpc-reconcile fetches $CONFIG_PARAMETER"
fi
