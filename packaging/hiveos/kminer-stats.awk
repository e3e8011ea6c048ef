# kminer agent's Prometheus metrics (app/fleet/metrics.py) -> HiveOS custom-miner stats.
# Prints two lines: khs (total, kH/s), then the stats JSON (see h-stats.sh).
# Variables: ver, uptime, fans and busids (comma-separated, HiveOS's readings, may be empty).
# POSIX awk (mawk on HiveOS and Debian).
function label(s, key,    m, v) {
  if (match(s, key "=\"([^\"\\\\]|\\\\.)*\"")) {
    v = substr(s, RSTART + length(key) + 2, RLENGTH - length(key) - 3)
    return v
  }
  return ""
}
function hex(s,    i, c, v) {
  v = 0
  for (i = 1; i <= length(s); i++) {
    c = index("0123456789abcdef", tolower(substr(s, i, 1)))
    if (c == 0) return v
    v = v * 16 + c - 1
  }
  return v
}
function num(v) { return (v == "NaN" || v == "") ? "null" : v + 0 }
function dev_index(d) {
  if (!(d in idx)) { idx[d] = n; devs[n++] = d }
  return idx[d]
}
BEGIN { n = 0 }
/^#/ || NF < 2 { next }
{
  line = $0
  value = $NF
  brace = index(line, "{")
  name = brace ? substr(line, 1, brace - 1) : $1
  labels = brace ? substr(line, brace + 1, length(line) - brace - length(value) - 2) : ""
  d = label(labels, "device")
  if (name == "kminer_device_info") { i = dev_index(d); kind[i] = label(labels, "kind") }
  else if (name == "kminer_device_state" && value + 0 == 1) { state[dev_index(d)] = label(labels, "state") }
  else if (name == "kminer_device_temperature_celsius") { temp[dev_index(d)] = num(value) }
  else if (name == "kminer_device_utilization_ratio") { util[dev_index(d)] = num(value) }
  else if (name == "kminer_device_jobs_running") { jobs[dev_index(d)] = value + 0 }
  else if (name == "kminer_device_earnings_today_ntk") { today_dev[dev_index(d)] = value + 0 }
  else if (name == "kminer_jobs") { jobstate[label(labels, "state")] = value + 0 }
  else if (name == "kminer_earnings_today_ntk") { today = value + 0 }
  else if (name == "kminer_earnings_ntk_total") { total = value + 0 }
  else if (name == "kminer_rig_ready") { ready = value + 0 }
  else if (name == "kminer_rig_not_ready_info") { why = label(labels, "reason") }
  else if (name == "kminer_rig_info" && ver == "") { ver = label(labels, "version") }
}
END {
  gpus = 0
  for (i = 0; i < n; i++) if (kind[i] != "cpu") gpus++
  nf = split(fans, fan, ","); nb = split(busids, bus, ",")
  hs = ""; tj = ""; fj = ""; bj = ""; dj = ""; sum = 0; k = 0
  for (i = 0; i < n; i++) {
    if (gpus > 0 && kind[i] == "cpu") continue
    load = 0
    if (state[i] == "mining") load = (util[i] != "" && util[i] != "null") ? util[i] * 100 : (jobs[i] > 0 ? 100 : 0)
    load = int(load + 0.5)
    sum += load
    sep = (k ? "," : "")
    hs = hs sep load
    tj = tj sep (temp[i] == "" || temp[i] == "null" ? 0 : int(temp[i] + 0.5))
    k++
    if (nf == gpus && gpus > 0) fj = fj sep fan[k] + 0; else fj = fj sep 0
    if (nb == gpus && gpus > 0) { b = bus[k]; sub(/:.*/, "", b); bj = bj sep hex(b) }
  }
  for (i = 0; i < n; i++) {
    dj = dj (i ? "," : "") sprintf("{\"device\":\"%s\",\"kind\":\"%s\",\"state\":\"%s\",\"temp\":%s,\"load\":%s,\"jobs\":%d,\"today_ntk\":%.6f}",
         devs[i], kind[i], state[i], (temp[i] == "" ? "null" : temp[i]),
         (util[i] == "" || util[i] == "null" ? "null" : int(util[i] * 100 + 0.5)), jobs[i], today_dev[i])
  }
  printf "%.6f\n", sum / 1000
  printf "{\"hs\":[%s],\"hs_units\":\"hs\",\"temp\":[%s],\"fan\":[%s],\"uptime\":%d,", hs, tj, fj, uptime
  printf "\"ver\":\"%s, today %.4f NTK\",\"ar\":[%d,%d,%d],\"algo\":\"kminer\",", ver, today, jobstate["paid"], jobstate["rejected"], jobstate["failed"]
  if (bj != "" && nb == gpus) printf "\"bus_numbers\":[%s],", bj
  printf "\"kminer\":{\"ready\":%s,\"why\":\"%s\",\"today_ntk\":%.6f,\"total_ntk\":%.6f,\"devices\":[%s]}}\n", (ready ? "true" : "false"), why, today, total, dj
}
