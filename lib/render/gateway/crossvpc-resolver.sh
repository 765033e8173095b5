#!/bin/bash
# Resolves node addresses on the tunnel devices on demand. The kernel asks (app_solicit)
# instead of broadcasting ARP; the answer is a pure function of the node IP, so the
# gateway needs no per-node configuration and its state grows with nodes, not pods.
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
log() { echo "crossvpc-resolver: $*" >&2; }
echo $$ >"$RUN/resolver.pid"

read -r -a node_nets <<<"$NODE_CIDRS"
is_node_ip() { in_cidrs "$1" "${node_nets[@]}"; }
resolve() {
  local ip=$1 dev=$2 mac
  if ! is_node_ip "$ip"; then
    log "ignored $ip on $dev: outside the node CIDRs"
    return
  fi
  if [ "$TUNNEL" = gre ]; then
    ip neigh replace "$ip" lladdr "$ip" dev "$dev" nud reachable
  else
    mac=$(node_mac "$ip")
    bridge fdb replace "$mac" dev "$dev" dst "$ip" self permanent
    ip neigh replace "$ip" lladdr "$mac" dev "$dev" nud reachable
  fi
}

# Requests the kernel raised before we started.
for dev in $(ip -o link show | awk -F': ' -v p="^${TUNNEL_DEV_PREFIX}[0-9]+" '$2 ~ p { sub(/@.*/, "", $2); print $2 }'); do
  ip -4 neigh show dev "$dev" nud incomplete | while read -r ip _; do resolve "$ip" "$dev"; done
done

# "miss <ip> dev <cxN> ..." is the kernel's app_solicit request.
ip monitor neigh | while read -r kind ip _dev dev _; do
  [ "$kind" = miss ] || continue
  case "$dev" in "$TUNNEL_DEV_PREFIX"[0-9]*) resolve "$ip" "$dev" ;; esac
done
