#!/bin/bash
# `crossvpc` on a gateway member (runcmd links it to /usr/local/sbin/crossvpc). Only
# `crossvpc doctor --live` runs here: it inspects this member and prints each finding with
# its fix in the static doctor's line format (lib/doctor/findings.ts parses both), per tenant
# then member-wide, and the summary line; exit 0 clean (infos only), 1 warnings, 2 errors.
# Read-only: it writes no file and changes no kernel state; SSM is read with the member's own
# role. Terse on purpose, and no --json: it ships in user data, which EC2 caps at 16 KB.
set -uo pipefail
CONF=/etc/crossvpc
usage="usage: crossvpc doctor --live  (this gateway member, read-only); crossvpc doctor <stack dir> and emulate run where the stack is synthesized"
case "$*" in
  'doctor --live') ;;
  -h | --help | 'doctor --help') echo "$usage"; exit 0 ;;
  *) echo "crossvpc: '$*' does not run on a gateway member; $usage" >&2; exit 2 ;;
esac
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"

# Findings, one tab-separated record each: severity, check, tenant, subject, what, fix,
# heading (t and h: the current tenant and heading).
found='' t='' h=''
declare -A count=() has=() drops=()
# add <severity> <check> <subject> <what> <fix>
add() {
  count[$1]=$((${count[$1]:-0} + 1))
  found+="$1	$2	$t	$3	$4	$5	$h"$'\n'
}
# oper <dev>: true when up, else prints its state
oper() {
  local s=missing
  read -r s 2>/dev/null <"/sys/class/net/$1/operstate"
  [[ $s == up || $s == unknown ]] || { echo "$s"; return 1; }
}
counters() { timeout 3 nft list counters table inet "$GATEWAY_NFT_TABLE" 2>/dev/null | awk '$1 == "counter" { n = $2 } $1 == "packets" { print n, $2 }'; }
# floating <ip> <dev>: held if and only if MASTER
floating() {
  local want=no held=${has["$2 $1"]+yes}
  [ "$vrrp" = MASTER ] && want=yes
  [ "${held:-no}" = $want ] || add error floating-ip "$1" "$vrrp, held on $2: ${held:-no}." "see $RUN/notify.log"
}
reapply="systemctl restart crossvpc-reconcile; see $RUN/apply.log"
links=$(ip -o link show | tr 'A-F' 'a-f')
rules=$(ip rule show pref 1000)
vrrp=$(cat "$RUN/vrrp-state" 2>/dev/null) || vrrp=NONE
while read -r _ dev _ addr _; do has["$dev ${addr%/*}"]=1; done < <(ip -o -4 addr show)
while read -r c n; do drops[$c]=$n; done < <(counters)
# Unanswered SYNs of every zone in one listing (its cost grows with the table, not the tenants).
syn=$(timeout 10 conntrack -L -p tcp --state SYN_SENT 2>/dev/null) || syn_failed=1

table_file=$STATE/tenants.tsv
[ -r "$table_file" ] || table_file=/dev/null
name='' vni='' zone='' table='' nat_ip='' eni_id='' eni_mac='' destinations=''
while tenant_next name vni zone table nat_ip eni_id eni_mac destinations; do
  t=$name h="tenant $name (VNI $vni, pair $CROSSVPC_PAIR)"
  tn=$TENANT_DEV_PREFIX$vni cx=$TUNNEL_DEV_PREFIX$vni s=''
  dev=$(awk -v m="link/ether ${eni_mac,,} " 'index($0, m) { sub(/[:@].*/, "", $2); print $2; exit }' <<<"$links")
  if [ -z "$dev" ]; then
    add error nat-eni "$eni_id" "NAT ENI not attached (no device has MAC $eni_mac)." "terraform apply re-attaches it."
  elif [ "$dev" != "$tn" ] || ! s=$(oper "$tn"); then
    add error nat-eni "$eni_id" "$dev ${s:-not applied}." "$reapply"
  fi
  s=$(oper "$cx") || add error tunnel "$cx" "$s." "$reapply"
  routes=$'\n'$(ip -4 route show table "$table" 2>/dev/null) missing=''
  IFS=, read -ra dests <<<"$destinations"
  for d in "${dests[@]}"; do [[ $routes == *$'\n'"${d%/32} via "* ]] || missing+=" $d"; done
  [[ $rules == *"fwmark $(printf '%#x' "$table") lookup"* ]] || missing+=" rule"
  [ -z "$missing" ] || add error tenant-route "table $table" "missing:$missing." "$reapply"
  floating "$nat_ip" "$tn"
  add info nat-ip "$nat_ip" "the source ${dests[*]} see from $name." "allow $nat_ip/32 there."
  # SYNs SNATed to the NAT IP and never answered: the tenant side drops the NAT IP.
  while read -r dst port n; do
    in_cidrs "$dst" "${dests[@]}" &&
      add warning unanswered "$dst port $port" "$n connection(s) from NAT IP $nat_ip unanswered: a security group or allow-list drops it?" "allow $nat_ip/32 on $dst."
  done < <(awk -v z=" zone=$zone " -v q="dst=$nat_ip" '$11 == q && index(" " $0 " ", z) { split($6, d, "="); split($8, p, "="); c[d[2] " " p[2]]++ } END { for (x in c) print x, c[x] }' <<<"$syn")
done <"$table_file"

t='' h="this member: pair $CROSSVPC_PAIR member $CROSSVPC_MEMBER"
[ -z "${syn_failed:-}" ] || add warning conntrack "conntrack -L" "failed or took over 10 s: unanswered connections not checked." "run again; a full table lists slowly"
if ! kill -0 "$(cat "$RUN/vrrp.pid" 2>/dev/null)" 2>/dev/null; then
  add error vrrp keepalived "not running." "systemctl restart crossvpc-keepalived"
elif [[ $vrrp == MASTER || $vrrp == BACKUP ]]; then
  add info vrrp keepalived "$vrrp." "none needed."
else
  add error vrrp keepalived "$vrrp: cannot carry traffic." "$CONF/bin/crossvpc-check says why."
fi
floating "$HAVIP" "$(cat "$RUN/underlay" 2>/dev/null)"
if ! ctd=$(timeout 3 conntrackd -C "$RUN/conntrackd.conf" -s 2>&1); then
  add error conntrackd conntrackd "not running: no session survives a failover$([ "$vrrp" = MASTER ] || echo ' to this standby')." "systemctl restart crossvpc-conntrackd"
else
  n=$(awk '/ Error send | Malformed msgs / { n += $1 + $4 } END { print n + 0 }' <<<"$ctd")
  ((n == 0)) || add warning conntrackd conntrackd "$n sync messages failed or lost." "check UDP between the members."
fi
declare -A st=()
while IFS='=' read -r key v; do st[$key]=$v; done 2>/dev/null <"$STATE/$MEMBER_STATUS_FILE"
last="last attempt ${st[result]:-none}: ${st[error]:--}"
[[ ${st[result]:-} == applied || ${st[result]:-} == unchanged ]] || add error reconcile crossvpc-reconcile "$last." "systemctl status crossvpc-reconcile"
version='' error=''
if ! ssm_parameter; then
  add warning config-version "$CONFIG_PARAMETER" "$error." "check the role and the route to SSM."
elif [ "${st[version]:-0}" != "$version" ]; then
  add error config-version "$CONFIG_PARAMETER" "applied version ${st[version]:-0}, current version $version: stale ($last)." "systemctl status crossvpc-reconcile"
else
  add info config-version "$CONFIG_PARAMETER" "version $version applied." "none needed."
fi
# A drop counter moving within this second is a live problem, not history.
sleep 1
while read -r c n; do
  [[ " $GATEWAY_COUNTERS " == *" $c "* ]] || continue
  ((n > 0)) || continue
  if ((n > ${drops[$c]:-0})); then s=warning; else s=info; fi
  add $s drops "$c" "$n packets, +$((n - ${drops[$c]:-0})) in the last second." "nft list counter inet $GATEWAY_NFT_TABLE $c says what it counts."
done < <(counters)

code=0
((${count[warning]:-0})) && code=1
((${count[error]:-0})) && code=2
pl() { echo "${count[$1]:-0} $1$( ((${count[$1]:-0} == 1)) || echo s)"; }
verdict=(clean 'warnings: review them' 'errors: fix this member')
echo "crossvpc doctor --live: pair $CROSSVPC_PAIR member $CROSSVPC_MEMBER ($vrrp)"
awk -F '\t' '$7 != h { h = $7; print h } { printf "  %-7s [%s] %s: %s Fix: %s\n", $1, $2, $4, $5, $6 }' <<<"${found%$'\n'}"
echo "summary: $(pl error), $(pl warning), $(pl info) (${verdict[code]}; exit $code)"
exit $code
