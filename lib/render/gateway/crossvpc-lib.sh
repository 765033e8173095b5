# Sourced by every gateway script; the constants above this line come from lib/contract.
# Each function here has a TypeScript twin in lib/contract, and test/contract.test.ts
# runs both on many inputs and compares.

# tenant_next <column>...: reads the next tenant of tenants.tsv (on stdin) into variables
# named after the columns. The header line ("#name<TAB>vni<TAB>...") maps names to
# positions, so no script depends on column order. Builtins only: crossvpc-check runs
# every second. Returns 1 after the last row; exits 3 if the table lacks a column.
declare -gA TENANT_COLUMN=()
tenant_next() {
  local -a _row
  local _i _col
  # `|| ...`: a last row without its newline still counts.
  while IFS=$'\t' read -r -a _row || ((${#_row[@]})); do
    ((${#_row[@]})) || continue
    if [[ ${_row[0]} == \#* ]]; then
      _row[0]=${_row[0]#\#}
      TENANT_COLUMN=()
      for _i in "${!_row[@]}"; do TENANT_COLUMN[${_row[_i]}]=$_i; done
      continue
    fi
    # IFS whitespace merges empty fields: a short row would shift every later column.
    if ((${#_row[@]} != ${#TENANT_COLUMN[@]})); then
      echo "tenants.tsv row '${_row[0]}' has ${#_row[@]} fields, the header ${#TENANT_COLUMN[@]} (an empty field?)" >&2
      exit 3
    fi
    for _col in "$@"; do
      if [[ -z ${TENANT_COLUMN[$_col]+set} ]]; then
        echo "tenants.tsv has no column $_col (header: ${!TENANT_COLUMN[*]})" >&2
        exit 3
      fi
      printf -v "$_col" '%s' "${_row[${TENANT_COLUMN[$_col]}]}"
    done
    return 0
  done
  return 1
}

# ip2int <a.b.c.d>: the address as an unsigned 32-bit number (lib/contract ipv4ToInt).
ip2int() {
  local a b c d
  # Anything else would be an arithmetic error that ends the caller's loop (the resolver's).
  [[ $1 =~ ^(0|[1-9][0-9]{0,2})(\.(0|[1-9][0-9]{0,2})){3}$ ]] || return 1
  IFS=. read -r a b c d <<<"$1"
  echo $(((10#$a << 24) | (10#$b << 16) | (10#$c << 8) | 10#$d))
}

# in_cidrs <ip> <cidr>...: true when ip lies inside one of the CIDRs (lib/contract cidrContains).
in_cidrs() {
  local n net bits mask cidr
  n=$(ip2int "$1") || return 1
  shift
  for cidr in "$@"; do
    net=$(ip2int "${cidr%/*}") || continue
    bits=${cidr#*/}
    mask=$(((0xffffffff << (32 - bits)) & 0xffffffff))
    if (((n & mask) == (net & mask))); then return 0; fi
  done
  return 1
}

# node_mac <a.b.c.d>: the node-side tunnel MAC of a node IP (lib/contract nodeMac).
node_mac() {
  local a b c d
  IFS=. read -r a b c d <<<"$1"
  printf '%s:%02x:%02x:%02x:%02x' "$NODE_MAC_PREFIX" "$((10#$a))" "$((10#$b))" "$((10#$c))" "$((10#$d))"
}

# imds <path>: an IMDSv2 GET under /latest/ (session token first), bounded in time.
imds() {
  local token
  token=$(curl -sf -m 2 -X PUT "$IMDS_ENDPOINT/latest/api/token" -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') || return 1
  curl -sf -m 2 -H "X-aws-ec2-metadata-token: $token" "$IMDS_ENDPOINT/latest/$1"
}

# aws_credentials: sets AWS_REGION, AWS_AK, AWS_SK and AWS_ST from IMDSv2 (the instance role's
# temporary credentials), for curl --aws-sigv4. Returns 1 with the reason in `error` if IMDS fails
# (a variable, not stderr: callers that must write nothing, like the live doctor, read it too).
aws_credentials() {
  local role creds
  AWS_REGION=$(imds meta-data/placement/region) || { error="IMDS: no region"; return 1; }
  role=$(imds meta-data/iam/security-credentials/) || { error="IMDS: no role"; return 1; }
  role=${role%%$'\n'*} # the first line (not `| head`: its early exit fails a pipefail pipeline)
  creds=$(imds "meta-data/iam/security-credentials/$role") || { error="IMDS: no credentials for role $role"; return 1; }
  if ! AWS_AK=$(jq -er .AccessKeyId <<<"$creds") || ! AWS_SK=$(jq -er .SecretAccessKey <<<"$creds") || ! AWS_ST=$(jq -er .Token <<<"$creds"); then
    error="IMDS: credentials of role $role lack a field"
    return 1
  fi
}

# ssm_parameter: SSM GetParameter of CONFIG_PARAMETER with the instance role (SigV4), read-only;
# sets `version` and `value` (base64 gzip), or `error`. crossvpc-reconcile and the live doctor share it.
ssm_parameter() {
  local endpoint response code body
  aws_credentials || return 1
  endpoint=${SSM_ENDPOINT:-https://ssm.$AWS_REGION.amazonaws.com}
  response=$(curl -sS -m 5 --aws-sigv4 "aws:amz:$AWS_REGION:ssm" --user "$AWS_AK:$AWS_SK" -H "x-amz-security-token: $AWS_ST" \
    -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: AmazonSSM.GetParameter' \
    --data-binary "$(jq -cn --arg n "$CONFIG_PARAMETER" '{Name: $n}')" -w '\n%{http_code}' "$endpoint/" 2>&1) ||
    { error="GetParameter $CONFIG_PARAMETER: $response"; return 1; }
  code=${response##*$'\n'}
  body=${response%$'\n'*}
  if [ "$code" != 200 ]; then
    error="GetParameter $CONFIG_PARAMETER: HTTP $code $(jq -r '"\(.__type // "") \(.message // .Message // "")"' <<<"$body" 2>/dev/null)"
    return 1
  fi
  if ! version=$(jq -er '.Parameter.Version' <<<"$body") || ! value=$(jq -er '.Parameter.Value' <<<"$body"); then
    error="GetParameter $CONFIG_PARAMETER: no Parameter.Version/Value in the answer"
    return 1
  fi
}
