#!/bin/bash
# crossvpc-converge [self|peer]
# self (the default, run on becoming master): moves the HaVip and every NAT IP onto this
# member's ENIs through the EC2 API (AssignPrivateIpAddresses, AllowReassignment), each EIP
# egress IP onto its primary ENI and the EIP onto that (AssociateAddress, AllowReassociation), and
# retries with backoff until every move holds, or until this member is no longer master.
# keepalived does not retry notify scripts, so this loop is what makes a failed move hold.
# peer (run on leaving MASTER for BACKUP): moves them onto the peer's ENIs, while this
# member stays backup, for a bounded number of attempts. A master that never saw the
# other side's mastership (a split that healed when the loser heard the winner first)
# would otherwise never take the addresses back.
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
target=${1:-self}
log() { echo "$(date +%s.%N) crossvpc-converge $target: $*"; }
case "$target" in
  self) eni=$SELF_ENI table_file=$STATE/tenants.tsv ;;
  peer) eni=$PEER_ENI table_file=$STATE/peer-tenants.tsv ;;
  *) log "unknown target (self or peer)"; exit 2 ;;
esac
# One pass at a time; a newer request (e.g. RELOAD with a new tenant) waits its turn.
exec 9>"$RUN/converge.lock"
flock -w 60 9 || { log "another converge holds the lock for 60s; giving up this pass"; exit 1; }
underlay=$(cat "$RUN/underlay")
log "started (state $(cat "$RUN/vrrp-state" 2>/dev/null || echo unknown))"

is_master() { [ "$(cat "$RUN/vrrp-state" 2>/dev/null)" = MASTER ]; }
is_backup() { [ "$(cat "$RUN/vrrp-state" 2>/dev/null)" = BACKUP ]; }
# Whose addresses to claim, and for how long to keep trying.
wanted() { if [ "$target" = self ]; then is_master; else is_backup && ((attempt <= 20)); fi; }
garp() { # <dev> <ip>: refresh neighbours on an L2 segment; harmless where the cloud ignores it
  if command -v arping >/dev/null 2>&1; then arping -q -U -c 2 -I "$1" "$2" >/dev/null 2>&1 || true; fi
}

assign_all() {
  local endpoint name nat_ip eni_id egress egress_ip eip_allocation_id ok=0 error=
  aws_credentials || { echo "$error" >&2; return 1; } # converge.log says why
  endpoint=${EC2_ENDPOINT:-https://ec2.$AWS_REGION.amazonaws.com}
  # Every call is counted in $RUN/$IP_MOVES_FILE (calls=N failures=M) for crossvpc-metrics.
  ec2() { # <query after Action=>: one signed call, counted
    local rc=0 _ calls=0 fails=0
    curl -sS -f -m 5 --aws-sigv4 "aws:amz:$AWS_REGION:ec2" --user "$AWS_AK:$AWS_SK" -H "x-amz-security-token: $AWS_ST" \
      "$endpoint/?Version=2016-11-15&Action=$1" >/dev/null || rc=1
    # Under the converge lock: no other writer.
    [ -r "$RUN/$IP_MOVES_FILE" ] && IFS=' =' read -r _ calls _ fails <"$RUN/$IP_MOVES_FILE"
    [[ $calls =~ ^[0-9]+$ && $fails =~ ^[0-9]+$ ]] || calls=0 fails=0
    printf 'calls=%d failures=%d\n' $((calls + 1)) $((fails + rc)) >"$RUN/$IP_MOVES_FILE.new" && mv -f "$RUN/$IP_MOVES_FILE.new" "$RUN/$IP_MOVES_FILE"
    return $rc
  }
  assign() { ec2 "AssignPrivateIpAddresses&NetworkInterfaceId=$1&PrivateIpAddress.1=$2&AllowReassignment=true"; } # <eni> <ip>
  associate() { ec2 "AssociateAddress&AllocationId=$1&NetworkInterfaceId=$2&PrivateIpAddress=$3&AllowReassociation=true"; } # <allocation> <eni> <ip>
  if assign "$eni" "$HAVIP"; then log "HaVip $HAVIP -> $eni"; else log "HaVip $HAVIP: move failed"; ok=1; fi
  while tenant_next name nat_ip eni_id egress egress_ip eip_allocation_id; do
    if assign "$eni_id" "$nat_ip"; then log "tenant $name NAT IP $nat_ip -> $eni_id"; else log "tenant $name NAT IP: move failed"; ok=1; fi
    [ "$egress" = eip ] || continue
    # The address first: EC2 associates an EIP only with an address the ENI holds.
    if assign "$eni" "$egress_ip" && associate "$eip_allocation_id" "$eni" "$egress_ip"; then log "tenant $name EIP -> $egress_ip"; else log "tenant $name EIP: move failed"; ok=1; fi
  done <"$table_file"
  return $ok
}

# Gratuitous ARP in the background (for our own addresses only): the API move is what counts in a VPC.
[ "$target" = self ] && (
  exec 9>&- # the lock belongs to the API pass, not to this slow background job
  garp "$underlay" "$HAVIP"
  vni='' nat_ip=''
  while tenant_next vni nat_ip; do
    garp "$TENANT_DEV_PREFIX$vni" "$nat_ip"
  done <"$STATE/tenants.tsv"
) &

delay=0.2
attempt=1
while wanted; do
  if assign_all; then
    log "all floating IPs hold after $attempt attempt(s)"
    exit 0
  fi
  log "attempt $attempt failed; retrying in ${delay}s"
  sleep "$delay"
  delay=$(awk -v d="$delay" 'BEGIN { d *= 2; if (d > 10) d = 10; print d }')
  attempt=$((attempt + 1))
done
log "stopped after $((attempt - 1)) attempt(s) (state $(cat "$RUN/vrrp-state" 2>/dev/null || echo unknown))"
