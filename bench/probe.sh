#!/usr/bin/env bash
# bench/probe.sh - where a server's time per response goes: tern vs nginx
# under the /json load of bench/run.sh (64 connections, no pipelining), with
# the kernel-side numbers run.sh does not show.
#
#   bash bench/probe.sh                       # tern and nginx, /json
#   PROBE_PATH=/plaintext PROBE_DEPTH=16 PROBE_CONNS=256 bash bench/probe.sh
#
# It starts tern-tfb (build/release, or BENCH_TERN_BIN) and nginx
# (bench/nginx/nginx.conf.in) with 2 workers each on free 127.0.0.1 ports,
# then alternates short wrk runs between them (the order flips every round)
# and prints per target, as medians over rounds:
#   req/s; the server's CPU time per response (user and system, all its
#   threads and processes); wrk's CPU time per response (wrk shares the 2
#   cores, so req/s is about 2 cores / (server + wrk CPU per response));
#   voluntary and involuntary context switches per response (server); and
#   how the connections were spread over the server's workers (registered fds
#   per epoll instance, sampled mid-run; includes each worker's own 2-3 fds).
# Then one more run per target with perf counting syscalls by type (perf's
# syscall tracepoints; skipped without perf) and the TCP segments per
# response (nstat, machine-wide).  Per-round ratios are printed too: on a
# shared 2-core machine a single run says little.
#
# Settings (environment): PROBE_ROUNDS (default 6), PROBE_DURATION seconds
# (4), PROBE_PATH (/json), PROBE_CONNS (64), PROBE_DEPTH (1),
# BENCH_TERN_BIN, BENCH_LOCK (default /tmp/tern-bench.lock: every wrk run
# holds it, so load tests on this machine never overlap; empty: no lock).
# Do not run this script itself under flock on the same file: it would wait
# for its own lock.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
TERN_BIN=${BENCH_TERN_BIN:-$ROOT/build/release/bench/tern-tfb}
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ROUNDS=${PROBE_ROUNDS:-6}
DURATION=${PROBE_DURATION:-4}
URLPATH=${PROBE_PATH:-/json}
CONNS=${PROBE_CONNS:-64}
DEPTH=${PROBE_DEPTH:-1}
LOCK=${BENCH_LOCK-/tmp/tern-bench.lock}
ACCEPT='application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
HZ=$(getconf CLK_TCK)

for cmd in wrk "$NGINX"; do
    command -v "$cmd" >/dev/null || { echo "probe.sh: $cmd is missing (make bench installs it)" >&2; exit 1; }
done
if [[ -z ${BENCH_TERN_BIN:-} ]]; then
    [[ -d $ROOT/build/release ]] || meson setup "$ROOT/build/release" "$ROOT" -Dbuildtype=release
    ninja -C "$ROOT/build/release" bench/tern-tfb >/dev/null
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-probe.XXXXXX")
declare -A PID=() PORT=()
cleanup() {
    local t
    for t in "${!PID[@]}"; do kill -TERM "${PID[$t]}" 2>/dev/null || true; done
    for t in "${!PID[@]}"; do wait "${PID[$t]}" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        [[ -n $(ss -Htln "sport = :$p") ]] || { echo "$p"; return; }
    done
}

PORT[tern]=$(free_port)
"$TERN_BIN" --host 127.0.0.1 --port "${PORT[tern]}" --workers 2 >"$WORK/tern.log" 2>&1 &
PID[tern]=$!
PORT[nginx]=$(free_port)
while [[ ${PORT[nginx]} == "${PORT[tern]}" ]]; do PORT[nginx]=$(free_port); done
mkdir -p "$WORK/nginx"
sed -e "s|@PORT@|${PORT[nginx]}|g" -e "s|@DIR@|$WORK/nginx|g" "$BENCH/nginx/nginx.conf.in" \
    >"$WORK/nginx/nginx.conf"
"$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" \
    >"$WORK/nginx.log" 2>&1 &
PID[nginx]=$!
for t in tern nginx; do
    for ((i = 0; i < 50; i++)); do
        curl -s -o /dev/null "http://127.0.0.1:${PORT[$t]}$URLPATH" && break
        sleep 0.1
    done
done

locked() { if [[ -n $LOCK ]]; then flock "$LOCK" "$@"; else "$@"; fi; }

# run_wrk PORT SECONDS [WRAPPER...]: prints "requests wrk_user_s wrk_sys_s"
run_wrk() {
    local port=$1 secs=$2 line
    shift 2
    line=$(locked "$@" /usr/bin/time -o "$WORK/wrk.time" -f '%U %S' \
        wrk -t 2 -c "$CONNS" -d "${secs}s" --timeout 8 -s "$BENCH/wrk/pipeline.lua" \
        -H "Accept: $ACCEPT" -H "Connection: keep-alive" \
        "http://127.0.0.1:$port$URLPATH" -- "$DEPTH" | grep '^BENCH ') || true
    line=${line#*requests=}
    echo "${line%% *} $(cat "$WORK/wrk.time")"
}

# tasks PID: the /proc task dirs of PID and its child processes.
tasks() {
    local p
    for p in "$1" $(pgrep -P "$1" || true); do ls -d "/proc/$p/task/"* 2>/dev/null || true; done
}
# counters PID: "utime stime voluntary involuntary" summed over all tasks.
counters() {
    local t s u=0 k=0 v=0 n=0 f
    for t in $(tasks "$1"); do
        s=$(cat "$t/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        u=$((u + f[11])) k=$((k + f[12]))
        v=$((v + $(awk '/^voluntary_ctxt/ { print $2 }' "$t/status")))
        n=$((n + $(awk '/^nonvoluntary_ctxt/ { print $2 }' "$t/status")))
    done
    echo "$u $k $v $n"
}
# spread PID: registered fds per epoll instance of PID and its children (a/b).
spread() {
    local p fd out=""
    for p in "$1" $(pgrep -P "$1" || true); do
        for fd in /proc/"$p"/fd/*; do
            [[ $(readlink "$fd" 2>/dev/null) == "anon_inode:[eventpoll]" ]] || continue
            out+="${out:+/}$(grep -c '^tfd:' "/proc/$p/fdinfo/${fd##*/}" 2>/dev/null || echo 0)"
        done
    done
    echo "$out"
}

declare -A R=() # R[target/key] = values, one per round
measure() { # measure TARGET
    local t=$1 c0 c1 w req wu ws u0 k0 v0 n0 u1 k1 v1 n1 sampler
    (sleep $((DURATION / 2 + 1)) && spread "${PID[$t]}" >"$WORK/spread") &
    sampler=$!
    c0=$(counters "${PID[$t]}")
    w=$(run_wrk "${PORT[$t]}" "$DURATION")
    c1=$(counters "${PID[$t]}")
    wait "$sampler" || true # not a bare wait: the servers are children too
    read -r req wu ws <<<"$w"
    [[ ${req:-0} -gt 0 ]] || { echo "  $t: wrk failed"; return; }
    read -r u0 k0 v0 n0 u1 k1 v1 n1 <<<"$c0 $c1"
    R[$t/rps]+="$(awk -v n="$req" -v s="$DURATION" 'BEGIN { printf "%.0f", n / s }') "
    R[$t/usr]+="$(awk -v d=$((u1 - u0)) -v n="$req" -v hz="$HZ" 'BEGIN { printf "%.3f", d * 1e6 / hz / n }') "
    R[$t/sys]+="$(awk -v d=$((k1 - k0)) -v n="$req" -v hz="$HZ" 'BEGIN { printf "%.3f", d * 1e6 / hz / n }') "
    R[$t/vcs]+="$(awk -v d=$((v1 - v0)) -v n="$req" 'BEGIN { printf "%.4f", d / n }') "
    R[$t/ivcs]+="$(awk -v d=$((n1 - n0)) -v n="$req" 'BEGIN { printf "%.4f", d / n }') "
    R[$t/wrk]+="$(awk -v u="$wu" -v s="$ws" -v n="$req" 'BEGIN { printf "%.3f", (u + s) * 1e6 / n }') "
    R[$t/spread]+="$(cat "$WORK/spread") "
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print 0; exit }
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "probe: tern (pid ${PID[tern]}) vs nginx (pid ${PID[nginx]}), GET $URLPATH, $CONNS connections," \
    "depth $DEPTH, $ROUNDS rounds x ${DURATION}s, load average $(cut -d' ' -f1 /proc/loadavg)"
for ((r = 1; r <= ROUNDS; r++)); do
    order=(tern nginx)
    ((r % 2)) || order=(nginx tern)
    for t in "${order[@]}"; do measure "$t"; done
    tr=$(echo "${R[tern/rps]}" | awk '{ print $NF }')
    nr=$(echo "${R[nginx/rps]}" | awk '{ print $NF }')
    printf '  round %d: tern %7d req/s (%s) nginx %7d req/s (%s) tern/nginx %.3f\n' "$r" "$tr" \
        "$(echo "${R[tern/spread]}" | awk '{ print $NF }')" "$nr" \
        "$(echo "${R[nginx/spread]}" | awk '{ print $NF }')" "$(awk -v a="$tr" -v b="$nr" 'BEGIN { print a / b }')"
done

echo
printf '%-6s %8s %10s %8s %8s %10s %8s %8s  %s\n' target "req/s" "cpu us/r" usr sys "wrk us/r" "vcs/r" "ivcs/r" \
    "fds per worker, each round"
for t in tern nginx; do
    usr=$(median <<<"${R[$t/usr]}") sys=$(median <<<"${R[$t/sys]}")
    printf '%-6s %8.0f %10.2f %8.2f %8.2f %10.2f %8.3f %8.3f  %s\n' "$t" "$(median <<<"${R[$t/rps]}")" \
        "$(awk -v a="$usr" -v b="$sys" 'BEGIN { print a + b }')" "$usr" "$sys" \
        "$(median <<<"${R[$t/wrk]}")" "$(median <<<"${R[$t/vcs]}")" "$(median <<<"${R[$t/ivcs]}")" \
        "${R[$t/spread]}"
done

# Syscalls by type and TCP segments, one extra run per target.
if ! command -v perf >/dev/null || ! perf stat -e 'syscalls:sys_enter_read' -- true >/dev/null 2>&1; then
    echo
    echo "(perf with syscall tracepoints is not available: no syscall counts)"
    exit 0
fi
EVENTS=""
for s in epoll_wait epoll_pwait epoll_ctl read recvfrom recvmsg readv write writev sendto sendmsg \
    accept4 close setsockopt futex timerfd_settime clock_gettime; do
    EVENTS+="syscalls:sys_enter_$s,"
done
EVENTS+="raw_syscalls:sys_enter"
echo
echo "syscalls and TCP segments per response (one more ${DURATION}s run each, under perf):"
for t in tern nginx; do
    pids=$( (echo "${PID[$t]}"; pgrep -P "${PID[$t]}" || true) | paste -sd,)
    nstat -n >/dev/null 2>&1 || true
    w=$(run_wrk "${PORT[$t]}" "$DURATION" perf stat -x, -e "$EVENTS" -p "$pids" -o "$WORK/perf.$t" --)
    read -r req _ <<<"$w"
    segs=$(nstat 2>/dev/null | awk -v n="$req" '$1 == "TcpOutSegs" { printf "%.3f", $2 / n }')
    printf '  %-6s tcp segments %s  ' "$t" "${segs:-?}"
    awk -F, -v n="$req" '$1 ~ /^[0-9]+$/ && $1 / n >= 0.001 {
        name = $3; sub(/.*sys_enter_?/, "", name); if (name == "") name = "all"
        printf "%s %.3f  ", name, $1 / n } END { print "" }' "$WORK/perf.$t"
done
