#!/usr/bin/env bash
# Called by HiveOS before every start (sourced by /hive/bin/custom, the flight sheet in scope);
# writes $CUSTOM_CONFIG_FILENAME (shell assignments, quoted with printf %q) for h-run.sh and
# h-stats.sh. Also runs on its own: CUSTOM_URL=sepolia ./h-config.sh
#   CUSTOM_URL          the network: local, devnet, sepolia, holesky, mainnet, or an http(s) RPC URL
#   CUSTOM_TEMPLATE     the wallet account this rig mines for (0x..., usually %WAL%); empty: the wallet setting
#   CUSTOM_USER_CONFIG  more: `--password-file FILE`, `--sandbox strict`, `--interval S`, `--grace S`,
#                       `home=/path` (KMINER_HOME), `metrics_port=N` (default 60080)
# A bad value is one line on stderr and status 1; nothing is written then.
[ -n "${CUSTOM_NAME:-}" ] || . "$(dirname "${BASH_SOURCE[0]}")/h-manifest.conf"

kminer_hive_config() {
  local dir bin port=60080 home="" w i tmp a
  local -a args=() words=()
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
  bin="${KMINER_HIVE_BIN:-$dir/app/kminer}"
  case "${CUSTOM_URL:-}" in
    "") ;;
    http://*|https://*) args+=(--rpc-url "$CUSTOM_URL");;
    local|devnet|sepolia|holesky|mainnet) args+=(--network "$CUSTOM_URL");;
    *) echo "kminer h-config: pool URL must be a network name (local, devnet, sepolia, holesky, mainnet) or an http(s) RPC URL, got '$CUSTOM_URL'" >&2; return 1;;
  esac
  if [ -n "${CUSTOM_TEMPLATE:-}" ]; then
    if ! [[ "$CUSTOM_TEMPLATE" =~ ^0x[0-9a-fA-F]{40}$ ]]; then
      echo "kminer h-config: wallet must be a 0x address (40 hex digits), got '$CUSTOM_TEMPLATE'" >&2; return 1
    fi
    args+=(--account "$CUSTOM_TEMPLATE")
  fi
  read -r -a words <<< "${CUSTOM_USER_CONFIG:-}"
  i=0
  while [ "$i" -lt "${#words[@]}" ]; do
    w="${words[$i]}"
    case "$w" in
      home=*) home="${w#home=}";;
      metrics_port=*) port="${w#metrics_port=}"
        if ! [[ "$port" =~ ^[0-9]{1,5}$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
          echo "kminer h-config: metrics_port must be 1..65535, got '$port'" >&2; return 1
        fi;;
      --password-file|--sandbox|--interval|--grace|--network|--rpc-url|--account)
        i=$((i + 1))
        [ "$i" -lt "${#words[@]}" ] || { echo "kminer h-config: $w needs a value" >&2; return 1; }
        args+=("$w" "${words[$i]}");;
      *) echo "kminer h-config: unknown extra config '$w' (use --password-file F, --sandbox L, --interval S, --grace S, home=DIR, metrics_port=N)" >&2
         return 1;;
    esac
    i=$((i + 1))
  done
  mkdir -p "$(dirname "$CUSTOM_CONFIG_FILENAME")" || return 1
  tmp="$CUSTOM_CONFIG_FILENAME.tmp.$$"
  {
    echo "# written by h-config.sh from the flight sheet; h-run.sh and h-stats.sh read it"
    printf 'KMINER_BIN=%q\n' "$bin"
    printf 'KMINER_METRICS_PORT=%q\n' "$port"
    printf 'KMINER_HIVE_HOME=%q\n' "$home"
    printf 'KMINER_ARGS=('; for a in "${args[@]}"; do printf '%q ' "$a"; done; printf ')\n'
  } > "$tmp" && mv "$tmp" "$CUSTOM_CONFIG_FILENAME" || { rm -f "$tmp"; return 1; }
  echo "kminer h-config: wrote $CUSTOM_CONFIG_FILENAME"
}
kminer_hive_config
