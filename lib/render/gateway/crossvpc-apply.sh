#!/bin/bash
# crossvpc tenant configuration: converges tenant ENIs, tunnels, policy routes and the
# nftables ruleset to this member's files of the pair document (STATE/tenants.tsv and
# STATE/ruleset.nft). Idempotent. Tenants the last applied table had and this one lacks are
# torn down. A tenant whose NAT ENI is not attached yet is skipped and listed in
# RUN/pending; crossvpc-reconcile runs this again when it appears. Either order of ENI and
# document is fine: an ENI the table does not list yet stays down and unnamed, so the
# ruleset (which matches tenant devices by name) forwards nothing through it.
set -euo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
log() { echo "crossvpc-apply: $*" >&2; }
# set -e exits quietly: name the command that stopped the apply (reconcile keeps the last lines).
trap 'log "line $LINENO failed ($?): $BASH_COMMAND"' ERR
exec 8>"$RUN/apply.lock"
flock -w 60 8 || { log "another apply holds the lock for 60s"; exit 1; }
underlay=$(cat "$RUN/underlay")
# The gateway subnet's router (the main table's default on the underlay), for EIP egress.
# (awk reads to the end in these lookups: one that exits early kills the writer by SIGPIPE, a
# failure under pipefail as soon as the output outgrows the pipe, with dozens of interfaces.)
underlay_router=$(ip -4 route show default dev "$underlay" | awk '$2 == "via" && !r { r = $3 } END { if (r) print r }')

if_by_mac() {
  ip -o link show | awk -v mac="$(echo "$1" | tr 'A-F' 'a-f')" \
    '!name && index(tolower($0), "link/ether " mac " ") { name = $2; sub(/:$/, "", name); sub(/@.*/, "", name) } END { if (name) print name }'
}

# inbound_routes <inbound> <table> [<tn> <subnet_cidr> <router_ip>]: the routing table of the
# replies of a tenant's port forwards (the ruleset marks them table | INBOUND_MARK_BIT): the
# client may be anywhere in the tenant VPC, beyond what the tenant's own table reaches.
# Without forwards (`none`) the table and its rule go; the forwards themselves live in the ruleset.
inbound_routes() {
  local t=$(($2 | INBOUND_MARK_BIT)) dst
  if [ "$1" = none ]; then
    ip route flush table "$t" 2>/dev/null || true
    while ip rule del pref 1000 fwmark "$t" lookup "$t" 2>/dev/null; do :; done
    return 0
  fi
  ip route replace "$4" dev "$3" table "$t"
  ip route replace default via "$5" dev "$3" onlink table "$t"
  ip -4 route show table "$t" | while read -r dst _; do
    case "$dst" in default | "$4") ;; *) ip route del "$dst" table "$t" ;; esac
  done
  [[ $rules == *"fwmark $(printf '%#x' "$t") lookup $t"* ]] || ip rule add pref 1000 fwmark "$t" lookup "$t"
}

declare -A listed=()
pending=()
rules=$(ip rule show pref 1000)
declare -A egress_ips=()
name='' vni='' table='' gateway_mac='' eni_mac='' eni_ip='' subnet_cidr='' router_ip='' destinations='' egress='' egress_ip='' inbound=''
while tenant_next name vni table gateway_mac eni_mac eni_ip subnet_cidr router_ip destinations egress egress_ip inbound; do
  listed[$vni]=1
  if [ "$egress" = eip ]; then egress_ips[$egress_ip]=1; fi
  tn="$TENANT_DEV_PREFIX$vni"
  cx="$TUNNEL_DEV_PREFIX$vni"
  # A replaced ENI (the tenant moved subnet): the old one still carries the name; set it aside.
  have=''
  if { read -r have <"/sys/class/net/$tn/address"; } 2>/dev/null && [ "${have,,}" != "${eni_mac,,}" ]; then
    log "tenant $name: $tn is ENI $have, the document says $eni_mac; setting the old one aside"
    ip addr flush dev "$tn"
    ip link set "$tn" down
    ip link set "$tn" name "${TENANT_DEV_PREFIX}old$vni" || log "could not rename the old ENI of tenant $name"
  fi
  if ! ip link show "$tn" >/dev/null 2>&1; then
    dev=$(if_by_mac "$eni_mac")
    if [ -z "$dev" ]; then
      pending+=("$name")
      log "tenant $name: NAT ENI $eni_mac is not attached yet; skipped until it is"
      continue
    fi
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

  # Routes first into the table, then stale ones out: an edit never leaves the table empty.
  # `unreachable default`: a marked packet to anything the tenant may not reach dies here
  # instead of falling through to the main table (an established flow to a revoked destination).
  want=" default $subnet_cidr"
  for dst in ${destinations//,/ }; do
    ip route replace "$dst" via "$router_ip" dev "$tn" onlink table "$table"
    want+=" $dst ${dst%/32}"
  done
  ip route replace "$subnet_cidr" dev "$tn" table "$table"
  for src in $NODE_CIDRS; do
    ip route replace "$src" dev "$cx" table "$table"
    want+=" $src ${src%/32}"
  done
  # Internet egress: the default goes to the tenant VPC's router (the ruleset admits public
  # destinations only); without it a packet to anything else dies here.
  if [ "$egress" = tenant_vpc ]; then
    ip route replace default via "$router_ip" dev "$tn" onlink table "$table"
  elif [ "$egress" = eip ]; then
    # EIP egress: out the underlay to the gateway subnet's router, as the member's own traffic.
    [ -n "$underlay_router" ] || { log "tenant $name: EIP egress needs a default route on $underlay"; exit 1; }
    ip route replace default via "$underlay_router" dev "$underlay" onlink table "$table"
  else
    ip route replace unreachable default table "$table"
  fi
  ip -4 route show table "$table" | while read -r first second _; do
    dst=$first
    if [ "$first" = unreachable ]; then dst=$second; fi
    case "$want " in *" $dst "*) ;; *) ip route del "$dst" table "$table" ;; esac
  done
  # Matched in a variable: `ip rule | grep -q` under pipefail fails when grep quits early (SIGPIPE).
  [[ $rules == *"fwmark $(printf '%#x' "$table") lookup $table"* ]] || ip rule add pref 1000 fwmark "$table" lookup "$table"
  inbound_routes "$inbound" "$table" "$tn" "$subnet_cidr" "$router_ip"
  log "tenant $name: vni $vni on $cx, ENI $tn $eni_ip"
done <"$STATE/tenants.tsv"

# EIP egress IPs of the last applied table that this one lacks (the tenant retired, left EIP
# egress or moved address) leave the underlay: nothing behind their EIP may reach this member.
# Before the new ruleset, which no longer treats them as egress IPs: no window in between.
# A table from before EIP egress has no such column.
if [ -r "$RUN/applied.tsv" ] && read -r header <"$RUN/applied.tsv" && [[ $header == *$'\t'egress_ip* ]]; then
  while tenant_next name egress egress_ip; do
    [ "$egress" != eip ] || [ -n "${egress_ips[$egress_ip]+x}" ] || ip addr del "$egress_ip/32" dev "$underlay" 2>/dev/null || true
  done <"$RUN/applied.tsv"
fi

# One transaction: the file deletes and re-creates the table, so no packet sees half a ruleset.
nft -f "$STATE/ruleset.nft"

# Retired tenants (in the last applied table, not in this one): their tunnel, routes, rule,
# NAT IP and sessions go. Their ENI is being detached by Terraform; until then it stays down.
if [ -r "$RUN/applied.tsv" ]; then
  zone=''
  while tenant_next name vni zone table; do
    [ -z "${listed[$vni]+x}" ] || continue
    ip link del "$TUNNEL_DEV_PREFIX$vni" 2>/dev/null || true
    if ip link show "$TENANT_DEV_PREFIX$vni" >/dev/null 2>&1; then
      ip addr flush dev "$TENANT_DEV_PREFIX$vni"
      ip link set "$TENANT_DEV_PREFIX$vni" down
    fi
    ip route flush table "$table" 2>/dev/null || true
    while ip rule del pref 1000 fwmark "$table" lookup "$table" 2>/dev/null; do :; done
    inbound_routes none "$table"
    conntrack -D -w "$zone" >/dev/null 2>&1 || true
    rm -f "$RUN/broken/$vni"
    log "tenant $name (vni $vni) retired: tunnel, routes and sessions removed"
  done <"$RUN/applied.tsv"
fi
cp "$STATE/tenants.tsv" "$RUN/applied.tsv.new" && mv -f "$RUN/applied.tsv.new" "$RUN/applied.tsv"
(IFS=,; printf '%s\n' "${pending[*]}") >"$RUN/pending"
touch "$RUN/dataplane-ready"
log "tenants applied${pending[*]:+; waiting for the ENIs of: ${pending[*]}}"
# On the master, raise the new tenants' floating IPs and move them in the cloud.
# 8>&-: the converge it starts runs on in the background and must not hold apply.lock.
if [ "$(cat "$RUN/vrrp-state" 2>/dev/null)" = MASTER ]; then "$CONF/bin/crossvpc-notify" INSTANCE reload RELOAD 8>&-; fi
