#!/bin/bash
# crossvpc gateway data plane: tunnels, tenant ENIs, policy routes, nftables.
# Idempotent: every step replaces rather than adds, so a re-run or a restart
# after a crash converges to the same state.
set -euo pipefail
CONF=/etc/crossvpc
RUN=/run/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
log() { echo "crossvpc-dataplane: $*" >&2; }
mkdir -p "$RUN"
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
if_by_ip() { ip -o -4 addr show | awk -v ip="$1" '{ split($4, a, "/"); if (a[1] == ip) { print $2; exit } }'; }
if_by_mac() {
  ip -o link show | awk -v mac="$(echo "$1" | tr 'A-F' 'a-f')" \
    'index(tolower($0), "link/ether " mac " ") { name = $2; sub(/:$/, "", name); sub(/@.*/, "", name); print name; exit }'
}

underlay=""
find_underlay() { underlay=$(if_by_ip "$SELF_IP"); [ -n "$underlay" ]; }
wait_for 300 "the primary interface holding $SELF_IP" find_underlay
echo "$underlay" >"$RUN/underlay"
log "underlay interface $underlay"

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
ip rule show pref 90 | grep -q 'iif lo' || ip rule add pref 90 iif lo lookup main
# Unmarked packets (tunnel underlay, VRRP, sync) skip the per-tenant rules entirely.
ip rule show pref 91 | grep -q "fwmark 0/$TENANT_MARK_MASK" || ip rule add pref 91 fwmark "0/$TENANT_MARK_MASK" lookup main

name='' vni='' table='' gateway_mac='' eni_mac='' eni_ip='' subnet_cidr='' router_ip='' destinations=''
while tenant_next name vni table gateway_mac eni_mac eni_ip subnet_cidr router_ip destinations; do
  tn="$TENANT_DEV_PREFIX$vni"
  cx="$TUNNEL_DEV_PREFIX$vni"
  if ! ip link show "$tn" >/dev/null 2>&1; then
    dev=""
    find_eni() { dev=$(if_by_mac "$eni_mac"); [ -n "$dev" ]; }
    wait_for 300 "tenant $name ENI $eni_mac" find_eni
    ip link set "$dev" down
    ip link set "$dev" name "$tn"
  fi
  ip link set "$tn" mtu "$UNDERLAY_MTU" up
  # noprefixroute: tenant subnets overlap; their routes live only in the tenant tables.
  ip addr replace "$eni_ip/${subnet_cidr#*/}" dev "$tn" noprefixroute

  if ! ip link show "$cx" >/dev/null 2>&1; then
    if [ "$TUNNEL" = gre ]; then
      # NBMA GRE keyed by VNI: one device reaches every node; the neighbour entry holds the node IP.
      ip link add "$cx" type gre key "$vni" dev "$underlay"
    else
      ip link add "$cx" type vxlan id "$vni" dstport "$VXLAN_PORT" dev "$underlay" nolearning
    fi
  fi
  if [ "$TUNNEL" != gre ]; then ip link set "$cx" address "$gateway_mac"; fi
  ip link set "$cx" mtu "$TUNNEL_MTU" up
  # No broadcast ARP into the tunnel: the kernel asks crossvpc-resolver instead.
  sysctl -qw "net.ipv4.neigh.$cx.app_solicit=1" "net.ipv4.neigh.$cx.mcast_solicit=0" "net.ipv4.neigh.$cx.ucast_solicit=0"

  ip route flush table "$table" 2>/dev/null || true
  for dst in ${destinations//,/ }; do
    ip route replace "$dst" via "$router_ip" dev "$tn" onlink table "$table"
  done
  ip route replace "$subnet_cidr" dev "$tn" table "$table"
  for src in $NODE_CIDRS; do
    ip route replace "$src" dev "$cx" table "$table"
  done
  ip rule del pref 1000 fwmark "$table" lookup "$table" 2>/dev/null || true
  ip rule add pref 1000 fwmark "$table" lookup "$table"
  log "tenant $name: vni $vni on $cx, ENI $tn $eni_ip"
done <"$CONF/tenants.tsv"

nft -f "$CONF/ruleset.nft"
touch "$RUN/dataplane-ready"
log "data plane ready"
# A re-run on the master (a tenant was added) must also raise the new floating IPs.
if [ "$(cat "$RUN/vrrp-state" 2>/dev/null)" = MASTER ]; then "$CONF/bin/crossvpc-notify" INSTANCE reload RELOAD; fi
