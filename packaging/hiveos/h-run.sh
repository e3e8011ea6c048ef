#!/usr/bin/env bash
# Runs `kminer agent` (HiveOS starts this in a screen session; working folder: this one).
# Its output goes to $CUSTOM_LOG_BASENAME.log; its metrics (Prometheus text, 127.0.0.1 only)
# to the port h-stats.sh reads.
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
. ./h-manifest.conf
[ -s "$CUSTOM_CONFIG_FILENAME" ] || { echo "kminer h-run: no $CUSTOM_CONFIG_FILENAME; run h-config.sh first (HiveOS does, from the flight sheet)" >&2; exit 1; }
. "$CUSTOM_CONFIG_FILENAME"
[ -n "$KMINER_HIVE_HOME" ] && export KMINER_HOME="$KMINER_HIVE_HOME"
[ -x "$KMINER_BIN" ] || { echo "kminer h-run: $KMINER_BIN is missing; reinstall the miner package" >&2; exit 1; }
mkdir -p "$(dirname "$CUSTOM_LOG_BASENAME")"
"$KMINER_BIN" settings set fleet.metrics_port "$KMINER_METRICS_PORT" >/dev/null || exit 1
"$KMINER_BIN" settings set fleet.metrics_host 127.0.0.1 >/dev/null || exit 1
date +%s > "$CUSTOM_LOG_BASENAME.started"
# the agent's exit status, not tee's
set -o pipefail
"$KMINER_BIN" agent "${KMINER_ARGS[@]}" 2>&1 | tee -a "$CUSTOM_LOG_BASENAME.log"
