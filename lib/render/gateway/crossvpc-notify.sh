#!/bin/bash
# keepalived notify: $1 INSTANCE|GROUP, $2 name, $3 MASTER|BACKUP|FAULT|STOP.
# crossvpc-apply calls it with RELOAD after a configuration change on the master;
# keepalived calls it with HEAL when this master hears a lower-priority master (split healed).
# A new master commits the peer's synced sessions BEFORE it answers for the
# floating IPs; the other order would reset every established client.
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
event=${3:-UNKNOWN}
mkdir -p "$RUN"
log() { echo "$(date +%s.%N) crossvpc-notify: $*" >>"$RUN/notify.log"; }
# Bounded: a busy or restarting conntrackd must never wedge the failover. keepalived
# runs one instance's notify scripts in turn, so a hung call would block the next state.
ctd() {
  local t0=$SECONDS
  timeout -k 1 3 conntrackd -C "$RUN/conntrackd.conf" "$@" >/dev/null 2>&1 || log "conntrackd $* failed or timed out after $((SECONDS - t0))s"
}
underlay=$(cat "$RUN/underlay")

floating_ips() { # <add|del>: the HaVip and each EIP egress IP on the underlay, each NAT IP on its tenant ENI
  local op=$1 vni nat_ip dev egress egress_ip
  ip1() { if [ "$op" = add ]; then ip addr replace "$1/32" dev "$2"; else ip addr del "$1/32" dev "$2" 2>/dev/null; fi; } # <ip> <dev>
  ip1 "$HAVIP" "$underlay"
  [ -r "$STATE/tenants.tsv" ] || return 0 # no document applied yet
  while tenant_next vni nat_ip egress egress_ip; do
    if [ "$egress" = eip ]; then ip1 "$egress_ip" "$underlay"; fi
    dev=$TENANT_DEV_PREFIX$vni
    [ -e "/sys/class/net/$dev" ] || continue # its ENI is not attached yet; the next RELOAD raises it
    ip1 "$nat_ip" "$dev"
  done <"$STATE/tenants.tsv"
  return 0
}

previous=$(cat "$RUN/vrrp-state" 2>/dev/null)
if [ "$event" != RELOAD ] && [ "$event" != HEAL ]; then
  printf '%s\n' "$event" >"$RUN/vrrp-state.new" && mv -f "$RUN/vrrp-state.new" "$RUN/vrrp-state"
fi
log "state $event"
case "$event" in
  MASTER)
    n=$(cat "$RUN/$FAILOVERS_FILE" 2>/dev/null)
    [[ $n =~ ^[0-9]+$ ]] || n=0
    printf '%d\n' $((n + 1)) >"$RUN/$FAILOVERS_FILE.new" && mv -f "$RUN/$FAILOVERS_FILE.new" "$RUN/$FAILOVERS_FILE"
    log "committing synced sessions"
    ctd -c
    ctd -f internal
    ctd -R
    ctd -B
    floating_ips add
    log "floating IPs up"
    setsid "$CONF/bin/crossvpc-converge" </dev/null >>"$RUN/converge.log" 2>&1 &
    ;;
  HEAL)
    # While apart, the peer may have carried traffic (it moved the IPs in the cloud).
    # Pull its sessions, commit them, and only then take the IPs back.
    ctd -n
    sleep 1
    ctd -c
    floating_ips add
    log "healed split: sessions pulled, floating IPs re-asserted"
    setsid "$CONF/bin/crossvpc-converge" </dev/null >>"$RUN/converge.log" 2>&1 &
    ;;
  RELOAD)
    floating_ips add
    setsid "$CONF/bin/crossvpc-converge" </dev/null >>"$RUN/converge.log" 2>&1 &
    ;;
  BACKUP | FAULT | STOP)
    floating_ips del
    # Not order-critical: in the background, so the next state's notify is never held up.
    (
      ctd -t
      ctd -n
    ) </dev/null >/dev/null 2>&1 &
    # A master that steps down to BACKUP heard a better (or equal, higher-addressed) master.
    # If a split just healed, that master may never have seen us as master and would not
    # take its addresses back: hand them over in the cloud.
    if [ "$event" = BACKUP ] && [ "$previous" = MASTER ]; then
      log "stepped down from MASTER: handing the floating IPs to the peer"
      setsid "$CONF/bin/crossvpc-converge" peer </dev/null >>"$RUN/converge.log" 2>&1 &
    fi
    ;;
esac
exit 0
