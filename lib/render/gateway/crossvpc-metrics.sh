#!/bin/bash
# crossvpc-metrics [once|serve]: writes this member's Prometheus metrics to $TEXTFILE_DIR/$TEXTFILE
# every METRICS_INTERVAL_SEC seconds, atomically (a temporary file, then mv), for
# node_exporter's textfile collector. Every external call is bounded by timeout, so a
# wedged nft, conntrack or conntrackd delays one pass, never stops the loop.
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
mkdir -p "$TEXTFILE_DIR"
# serve: node_exporter (host metrics plus this textfile) on the function-side address only.
if [ "${1:-}" = serve ]; then
  exec prometheus-node-exporter --collector.textfile.directory="$TEXTFILE_DIR" --web.listen-address="$SELF_IP:$METRICS_PORT"
fi
base="pair=\"$CROSSVPC_PAIR\",member=\"$CROSSVPC_MEMBER\""

family() { # <name>: HELP and TYPE of a contract family (METRIC_HELP: "type help")
  local h=${METRIC_HELP[$1]:?unknown metric $1}
  printf '# HELP %s%s %s\n# TYPE %s%s %s\n' "$METRIC_PREFIX" "$1" "${h#* }" "$METRIC_PREFIX" "$1" "${h%% *}"
}
sample() { # <name> <extra labels or ''> <value>
  printf '%s%s{%s%s} %s\n' "$METRIC_PREFIX" "$1" "$base" "${2:+,$2}" "$3"
}
num() { [[ $1 =~ ^[0-9]+$ ]] && echo "$1" || echo 0; }

# Entries per conntrack zone from one full listing, refreshed every CONNTRACK_COUNT_INTERVAL_SEC
# (a listing costs CPU in proportion to the table). A failed or timed-out count leaves no
# counts: the series are then absent, never a false 0.
declare -A zone_n=()
counted_at=0 count_ok=0
count_zones() {
  local zone n listing
  ((EPOCHSECONDS - counted_at < CONNTRACK_COUNT_INTERVAL_SEC)) && return
  counted_at=$EPOCHSECONDS count_ok=0 zone_n=()
  listing=$(timeout -k 1 "$CONNTRACK_COUNT_TIMEOUT_SEC" conntrack -L 2>/dev/null | awk '{ z = 0; for (i = 1; i <= NF; i++) if ($i ~ /^zone=/) { z = substr($i, 6) } c[z]++ } END { for (z in c) print z, c[z] }'; exit "${PIPESTATUS[0]}") || return
  while read -r zone n; do [ -n "$zone" ] && zone_n[$zone]=$n; done <<<"$listing"
  count_ok=1
}

write_metrics() {
  local -A pk=() by=() st=()
  local n p b name vni zone dir key reason vrrp s result ctd_up=0 calls=0 fails=0 masters=0 _
  # Named counters: "counter NAME {" then "packets P bytes B".
  while read -r n p b; do pk[$n]=$p by[$n]=$b; done < <(timeout -k 1 3 nft list counters table inet "$GATEWAY_NFT_TABLE" 2>/dev/null | awk '$1 == "counter" { n = $2 } $1 == "packets" { print n, $2, $4 }')
  local tenants=()
  if [ -r "$STATE/tenants.tsv" ]; then
    while tenant_next name vni zone; do tenants+=("$name $vni $zone"); done <"$STATE/tenants.tsv"
  fi
  for key in packets bytes; do
    family "tenant_${key}_total"
    for s in "${tenants[@]}"; do
      read -r name vni zone <<<"$s"
      for dir in $TRAFFIC_DIRECTIONS; do
        n=$TENANT_COUNTER_PREFIX${vni}_$dir
        if [ "$key" = packets ]; then p=${pk[$n]:-0}; else p=${by[$n]:-0}; fi
        sample "tenant_${key}_total" "tenant=\"$name\",vni=\"$vni\",direction=\"$dir\"" "$p"
      done
    done
  done
  family dropped_packets_total
  for reason in $GATEWAY_COUNTERS; do sample dropped_packets_total "reason=\"$reason\"" "${pk[$reason]:-0}"; done
  family dropped_bytes_total
  for reason in $GATEWAY_COUNTERS; do sample dropped_bytes_total "reason=\"$reason\"" "${by[$reason]:-0}"; done
  family conntrack_entries
  for s in "${tenants[@]}"; do
    read -r name vni zone <<<"$s"
    ((count_ok)) && sample conntrack_entries "tenant=\"$name\",vni=\"$vni\"" "${zone_n[$zone]:-0}"
  done
  family conntrack_limit_entries
  for s in "${tenants[@]}"; do
    read -r name vni zone <<<"$s"
    sample conntrack_limit_entries "tenant=\"$name\",vni=\"$vni\"" "$CONN_LIMIT_PER_TENANT"
  done
  vrrp=$(cat "$RUN/vrrp-state" 2>/dev/null) || vrrp=UNKNOWN
  [[ " $VRRP_STATES " == *" $vrrp "* ]] || vrrp=UNKNOWN
  family vrrp_state
  for s in $VRRP_STATES; do sample vrrp_state "state=\"$s\"" "$([ "$s" = "$vrrp" ] && echo 1 || echo 0)"; done
  masters=$(num "$(cat "$RUN/$FAILOVERS_FILE" 2>/dev/null)")
  family failovers_total
  sample failovers_total '' "$masters"
  # conntrackd -s: "current active connections" per cache, then "N Error send  M Error recv"
  # and "N Malformed msgs  M Lost msgs".
  local ctd
  if ctd=$(timeout -k 1 3 conntrackd -C "$RUN/conntrackd.conf" -s 2>/dev/null); then ctd_up=1; fi
  family conntrackd_up
  sample conntrackd_up '' "$ctd_up"
  family conntrackd_cache_entries
  ((ctd_up)) && awk -v pre="$METRIC_PREFIX" -v base="$base" '
    /^cache / { cache = $2; sub(":", "", cache) }
    /^current active connections:/ { printf "%sconntrackd_cache_entries{%s,cache=\"%s\"} %d\n", pre, base, cache, $4 }' <<<"$ctd"
  family conntrackd_sync_errors_total
  ((ctd_up)) && awk -v pre="$METRIC_PREFIX" -v base="$base" '
    function out(kind, v) { printf "%sconntrackd_sync_errors_total{%s,kind=\"%s\"} %d\n", pre, base, kind, v }
    / Error send / { out("send", $1); out("recv", $4) }
    / Malformed msgs / { out("malformed", $1); out("lost", $4) }' <<<"$ctd"
  # STATE/status: key=value lines (lib/contract/member-status.ts).
  if [ -r "$STATE/$MEMBER_STATUS_FILE" ]; then
    while IFS='=' read -r key s; do [ -n "$key" ] && st[$key]=$s; done <"$STATE/$MEMBER_STATUS_FILE"
  fi
  family reconcile_result
  for result in $MEMBER_STATUS_RESULTS; do sample reconcile_result "result=\"$result\"" "$([ "${st[result]:-}" = "$result" ] && echo 1 || echo 0)"; done
  family config_version
  sample config_version '' "$(num "${st[version]:-0}")"
  family config_applied_timestamp_seconds
  sample config_applied_timestamp_seconds '' "$(num "${st[applied_at]:-0}")"
  n=0
  [ "${st[pending]:--}" = - ] || n=$(tr ',' '\n' <<<"${st[pending]}" | grep -c .)
  family tenants_pending
  sample tenants_pending '' "$n"
  # crossvpc-converge keeps "calls=N failures=M".
  [ -r "$RUN/$IP_MOVES_FILE" ] && IFS=' =' read -r _ calls _ fails <"$RUN/$IP_MOVES_FILE"
  family ip_move_calls_total
  sample ip_move_calls_total '' "$(num "$calls")"
  family ip_move_failures_total
  sample ip_move_failures_total '' "$(num "$fails")"
  family metrics_timestamp_seconds
  sample metrics_timestamp_seconds '' "$EPOCHSECONDS"
}

while :; do
  count_zones
  if write_metrics >"$TEXTFILE_DIR/$TEXTFILE.tmp"; then mv -f "$TEXTFILE_DIR/$TEXTFILE.tmp" "$TEXTFILE_DIR/$TEXTFILE"; fi
  [ "${1:-}" = once ] && exit 0
  sleep "$METRICS_INTERVAL_SEC"
done
