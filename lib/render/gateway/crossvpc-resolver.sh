#!/bin/bash
# Resolves node addresses on the tunnel devices on demand. The kernel asks (app_solicit)
# instead of broadcasting ARP; the answer is a pure function of the node IP, so the
# gateway needs no per-node configuration and its state grows with nodes, not pods.
set -uo pipefail
CONF=/etc/crossvpc
RUN=/run/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
log() { echo "crossvpc-resolver: $*" >&2; }
echo $$ >"$RUN/resolver.pid"

ip2int() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  echo $(((a << 24) | (b << 16) | (c << 8) | d))
}
is_node_ip() {
  local n net bits mask cidr
  n=$(ip2int "$1")
  for cidr in $NODE_CIDRS; do
    net=$(ip2int "${cidr%/*}")
    bits=${cidr#*/}
    mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
    if (((n & mask) == (net & mask))); then return 0; fi
  done
  return 1
}
node_mac() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  printf '0e:cc:%02x:%02x:%02x:%02x' "$a" "$b" "$c" "$d"
}
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
for dev in $(ip -o link show | awk -F': ' '$2 ~ /^cx[0-9]+/ { sub(/@.*/, "", $2); print $2 }'); do
  ip -4 neigh show dev "$dev" nud incomplete | while read -r ip _; do resolve "$ip" "$dev"; done
done

# "miss <ip> dev <cxN> ..." is the kernel's app_solicit request.
ip monitor neigh | while read -r kind ip _dev dev _; do
  [ "$kind" = miss ] || continue
  case "$dev" in cx[0-9]*) resolve "$ip" "$dev" ;; esac
done
