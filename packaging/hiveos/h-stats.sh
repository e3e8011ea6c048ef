#!/usr/bin/env bash
# Sourced by the HiveOS agent every few seconds: sets $khs (total, kH/s) and $stats (JSON) from
# `kminer agent`'s metrics. Never exits (it runs inside the HiveOS agent): with no answer from
# the agent, khs=0 and stats=null (HiveOS shows the miner as not running).
#   hs[i]     device i's load in % while it mines (0 when idle, paused, held or outside its hours)
#   temp[i]   its temperature; fan[i] from HiveOS's own GPU readings when they line up
#   ar        [jobs paid, jobs rejected by buyers, jobs failed]
#   ver       "VERSION, today N NTK": the day's earnings on the dashboard
#   kminer    {ready, why, today_ntk, total_ntk, devices: [{device, kind, state, temp, load, jobs, today_ntk}]}
# The arrays hold the GPUs; a rig without one reports its CPU.
kh_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$kh_here/h-manifest.conf"
KMINER_METRICS_PORT=60080
[ -s "$CUSTOM_CONFIG_FILENAME" ] && . "$CUSTOM_CONFIG_FILENAME"
kh_text="$(curl -fsS --max-time 3 "http://127.0.0.1:${KMINER_METRICS_PORT}/metrics" 2>/dev/null)"
kh_uptime=0
[ -s "$CUSTOM_LOG_BASENAME.started" ] && kh_uptime=$(( $(date +%s) - $(cat "$CUSTOM_LOG_BASENAME.started") ))
kh_fans=""; kh_bus=""
kh_gs="${gpu_stats:-}"
[ -z "$kh_gs" ] && [ -s /run/hive/gpu-stats.json ] && kh_gs="$(cat /run/hive/gpu-stats.json)"
if [ -n "$kh_gs" ] && command -v jq >/dev/null; then
  # HiveOS lists its GPUs with brand nvidia/amd (and sometimes the CPU's own graphics): keep the cards
  kh_fans="$(echo "$kh_gs" | jq -r '[.brand as $b | .fan | to_entries[] | select($b[.key] == "nvidia" or $b[.key] == "amd") | .value] | join(",")' 2>/dev/null)"
  kh_bus="$(echo "$kh_gs" | jq -r '[.brand as $b | .busids | to_entries[] | select($b[.key] == "nvidia" or $b[.key] == "amd") | .value] | join(",")' 2>/dev/null)"
fi
if [ -z "$kh_text" ]; then
  khs=0
  stats=null
else
  kh_out="$(printf '%s\n' "$kh_text" | awk -v ver="$CUSTOM_VERSION" -v uptime="$kh_uptime" -v fans="$kh_fans" \
             -v busids="$kh_bus" -f "$kh_here/kminer-stats.awk")"
  khs="${kh_out%%$'\n'*}"
  stats="${kh_out#*$'\n'}"
fi
[ "${BASH_SOURCE[0]}" = "$0" ] && { echo "khs: $khs"; echo "stats: $stats"; }
