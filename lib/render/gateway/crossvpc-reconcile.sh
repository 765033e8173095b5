#!/bin/bash
# Keeps this member on the latest pair document: reads the SSM parameter CONFIG_PARAMETER
# every CONFIG_POLL_SEC with the instance role (IMDSv2 credentials, SigV4), and when its
# version changes, validates this member's files, installs them in STATE and runs
# crossvpc-apply. A broken or unreadable document never replaces a good one; errors back
# off to 60 s. While a tenant waits for its NAT ENI, it re-applies as soon as one appears,
# and when crossvpc-check saw a tenant's devices come back up (their routes went with them).
# Writes STATE/status (lib/contract/member-status.ts) after every attempt.
set -uo pipefail
CONF=/etc/crossvpc
# shellcheck source=/dev/null
. "$CONF/gateway.env"
# shellcheck source=/dev/null
. "$CONF/crossvpc-lib.sh"
log() { echo "$(date +%s.%N) crossvpc-reconcile: $*"; }
mkdir -p "$STATE" "$RUN"
if [ "$CROSSVPC_MEMBER" = a ]; then peer=b; else peer=a; fi

applied_version=0 applied_sha=- applied_at=0 pending=''
if [ -r "$STATE/status" ]; then
  while IFS='=' read -r key value; do
    case "$key" in
      version) applied_version=$value ;;
      sha256) applied_sha=$value ;;
      applied_at) applied_at=$value ;;
    esac
  done <"$STATE/status"
fi

status() { # <result> [error]
  local error=${2:--}
  {
    echo "version=$applied_version"
    echo "sha256=$applied_sha"
    echo "applied_at=$applied_at"
    echo "result=$1"
    echo "pending=${pending:--}"
    echo "error=${error//$'\n'/ }"
  } >"$STATE/status.new" && mv -f "$STATE/status.new" "$STATE/status"
}

version='' value='' error=''

# stage: decode and check this member's files into STATE/incoming; sets sha or error.
sha=''
stage() {
  local doc incoming=$STATE/incoming
  rm -rf "$incoming" && mkdir -p "$incoming"
  doc=$(base64 -d <<<"$value" 2>/dev/null | gunzip 2>/dev/null) || { error="the document is not base64 gzip"; return 1; }
  sha=$(printf '%s' "$doc" | sha256sum | cut -d' ' -f1)
  jq -e --argjson pair "$CROSSVPC_PAIR" --arg m "$CROSSVPC_MEMBER" \
    '.format == 1 and .pair == $pair and (.members[$m].tenants | type == "string" and length > 0) and (.members[$m].ruleset | type == "string" and length > 0)' \
    <<<"$doc" >/dev/null || { error="the document is not format 1 for pair $CROSSVPC_PAIR member $CROSSVPC_MEMBER"; return 1; }
  jq -j --arg m "$CROSSVPC_MEMBER" '.members[$m].tenants' <<<"$doc" >"$incoming/tenants.tsv"
  jq -j --arg m "$CROSSVPC_MEMBER" '.members[$m].ruleset' <<<"$doc" >"$incoming/ruleset.nft"
  jq -j --arg m "$peer" '.members[$m].tenants // ""' <<<"$doc" >"$incoming/peer-tenants.tsv"
  error=$( (
    name='' vni='' zone='' table='' gateway_mac='' nat_ip='' eni_id='' eni_mac='' eni_ip='' subnet_cidr='' router_ip='' destinations='' rows=0
    while tenant_next name vni zone table gateway_mac nat_ip eni_id eni_mac eni_ip subnet_cidr router_ip destinations; do
      rows=$((rows + 1))
      [[ $vni =~ ^[1-9][0-9]{0,7}$ && $zone =~ ^[1-9][0-9]{0,4}$ && $table =~ ^[1-9][0-9]{0,9}$ ]] || { echo "tenant $name: vni/zone/table not numbers"; exit 1; }
      [[ $eni_id =~ ^eni-[0-9a-zA-Z]+$ ]] || { echo "tenant $name: bad ENI id $eni_id"; exit 1; }
      [[ $eni_mac =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ && $gateway_mac =~ ^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$ ]] || { echo "tenant $name: bad MAC"; exit 1; }
      for ip in "$nat_ip" "$eni_ip" "$router_ip"; do ip2int "$ip" >/dev/null || { echo "tenant $name: bad address $ip"; exit 1; }; done
      for cidr in "$subnet_cidr" ${destinations//,/ }; do
        [[ $cidr =~ ^[0-9.]+/([0-9]|[12][0-9]|3[0-2])$ ]] && ip2int "${cidr%/*}" >/dev/null || { echo "tenant $name: bad CIDR $cidr"; exit 1; }
      done
    done <"$incoming/tenants.tsv"
    ((rows > 0)) || { echo "no tenants"; exit 1; }
  ) 2>&1) || return 1
  error=$(nft -c -f "$incoming/ruleset.nft" 2>&1) || { error="ruleset.nft does not load: $error"; return 1; }
}

install() {
  mv -f "$STATE/incoming/peer-tenants.tsv" "$STATE/peer-tenants.tsv"
  mv -f "$STATE/incoming/ruleset.nft" "$STATE/ruleset.nft"
  mv -f "$STATE/incoming/tenants.tsv" "$STATE/tenants.tsv"
}

apply() { # pipefail: the pipeline fails when crossvpc-apply does
  error=$("$CONF/bin/crossvpc-apply" 2>&1 | tee -a "$RUN/apply.log" | tail -n 3)
}

# Any pending tenant's ENI attached since the last apply?
pending_arrived() {
  local links
  [ -n "$pending" ] || return 1
  links=$(ip -o link show | tr 'A-F' 'a-f')
  eni_mac='' name=''
  while tenant_next name eni_mac; do
    case ",$pending," in *",$name,"*) [[ $links == *"link/ether ${eni_mac,,} "* ]] && return 0 ;; esac
  done <"$STATE/tenants.tsv"
  return 1
}

# Does every applied tenant still have its routes? A link flap shorter than crossvpc-check's
# 1 s look drops them silently; one `ip route` per poll catches it.
routes_intact() {
  local routes
  routes=$(ip -4 route show table all)
  vni='' table='' name=''
  while tenant_next name vni table; do
    case ",$pending," in *",$name,"*) continue ;; esac
    [[ $routes == *"dev $TENANT_DEV_PREFIX$vni table $table"* ]] || return 1
  done <"$STATE/tenants.tsv"
}

delay=$CONFIG_POLL_SEC next_fetch=0
log "reading $CONFIG_PARAMETER every ${CONFIG_POLL_SEC}s (applied version $applied_version)"
while true; do
  if ((SECONDS >= next_fetch)); then
    if ! ssm_parameter; then
      log "$error; retrying in ${delay}s"
      status fetch_failed "$error"
      next_fetch=$((SECONDS + delay))
      delay=$((delay * 2 > 60 ? 60 : delay * 2))
    elif [ "$version" = "$applied_version" ] && [ -e "$RUN/dataplane-ready" ]; then
      delay=$CONFIG_POLL_SEC next_fetch=$((SECONDS + delay))
      pending=$(cat "$RUN/pending" 2>/dev/null) # also what the boot-time apply left
      status unchanged
      routes_intact || { log "a tenant lost its routes; re-applying"; : >"$RUN/reapply"; }
    elif ! stage; then
      log "version $version refused, keeping version $applied_version: $error"
      status invalid "version $version: $error"
      next_fetch=$((SECONDS + delay))
      delay=$((delay * 2 > 60 ? 60 : delay * 2))
    else
      install
      if apply; then
        applied_version=$version applied_sha=$sha applied_at=$(date +%s) pending=$(cat "$RUN/pending")
        log "applied version $version${pending:+ (waiting for the ENIs of $pending)}"
        status applied
        delay=$CONFIG_POLL_SEC
      else
        log "version $version failed to apply: $error"
        status apply_failed "version $version: $error"
        delay=$((delay * 2 > 60 ? 60 : delay * 2))
      fi
      next_fetch=$((SECONDS + delay))
    fi
  elif [ -e "$RUN/reapply" ]; then
    rm -f "$RUN/reapply"
    if apply; then
      pending=$(cat "$RUN/pending")
      log "a tenant's devices came back up; re-applied"
      status applied
    else
      status apply_failed "$error"
    fi
  elif pending_arrived; then
    if apply; then
      pending=$(cat "$RUN/pending")
      log "a pending ENI arrived; applied${pending:+ (still waiting for $pending)}"
      status applied
    else
      status apply_failed "$error"
    fi
  fi
  sleep 1
done
