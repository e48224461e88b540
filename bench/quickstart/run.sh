#!/usr/bin/env bash
# bench/quickstart/run.sh - `make bench-quickstart`: the quickstart users API
# (examples/quickstart, tern) against the same API in Express
# (bench/quickstart/express-users.js), under a mix of 80 % GET /users/:id
# and 20 % POST /users (bench/quickstart/mix.lua), on the same database.
#
# What it does (details and caveats: bench/README.md, "Quickstart load
# check"):
#   1. installs what is missing (wrk, curl, jq, PostgreSQL, sqlite3,
#      bench/quickstart/node_modules), builds tern-quickstart in
#      build/release unless BENCH_QS_BIN names one;
#   2. starts a private PostgreSQL (scripts/pg-test.sh, its own state file);
#      per database and target, a fresh database (PostgreSQL: qs_TARGET;
#      SQLite: a new file in a temp dir), the server on a free 127.0.0.1
#      port with 2 workers, then BENCH_USERS seeded users (ids 1..N);
#   3. checks that both targets answer the same statuses to the same
#      requests (201 + Location, 200, 404, 409, 422);
#   4. runs wrk in interleaved rounds (the target order rotates each round);
#      before the warm-up and before the measured run the rows added by
#      earlier runs are deleted, so every run starts from the seeded table;
#   5. prints per database: median req/s, p99, non-2xx and socket errors,
#      server (and PostgreSQL) CPU time per response, tern/x.
#
# Settings (environment):
#   BENCH_DBS       databases, default "postgres sqlite" (sqlite is skipped,
#                   with a note, when better-sqlite3 did not install)
#   BENCH_TARGETS   default "tern express"
#   BENCH_ROUNDS    measured rounds, default 2
#   BENCH_DURATION  seconds per measured run, default 10 (a trailing s is ok)
#   BENCH_WARMUP    seconds of warm-up before each measured run, default 2
#   BENCH_CONNS     connections, default 64
#   BENCH_THREADS   wrk threads, default 2
#   BENCH_USERS     seeded users, default 1000
#   BENCH_QS_BIN    a tern-quickstart binary to use instead of building
#                   build/release/examples/quickstart/tern-quickstart
#   TERN_PG_STATE   the PostgreSQL state file, default build/bench-qs-pg.state
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
QS="$ROOT/bench/quickstart"
TERN_BIN=${BENCH_QS_BIN:-$ROOT/build/release/examples/quickstart/tern-quickstart}
export TERN_PG_STATE=${TERN_PG_STATE:-$ROOT/build/bench-qs-pg.state}

read -r -a DBS <<<"${BENCH_DBS:-postgres sqlite}"
read -r -a TARGETS <<<"${BENCH_TARGETS:-tern express}"
ROUNDS=${BENCH_ROUNDS:-2}
DURATION=${BENCH_DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${BENCH_WARMUP:-2}
WARMUP=${WARMUP%s}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
USERS=${BENCH_USERS:-1000}
WORKERS=2

for v in ROUNDS DURATION WARMUP CONNS THREADS USERS; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
((ROUNDS >= 1 && DURATION >= 1 && CONNS >= THREADS && THREADS >= 1 && USERS >= 1)) ||
    { echo "run.sh: bad settings" >&2; exit 2; }
((ROUNDS >= 2)) || echo "run.sh: warning: BENCH_ROUNDS=$ROUNDS; use at least 2 rounds" >&2
for t in "${TARGETS[@]}"; do
    case $t in tern | express) ;; *) echo "run.sh: unknown target '$t'" >&2; exit 2 ;; esac
done
for d in "${DBS[@]}"; do
    case $d in postgres | sqlite) ;; *) echo "run.sh: unknown database '$d'" >&2; exit 2 ;; esac
done

log() { printf '%s\n' "$*" >&2; }
has() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
has_db() { [[ " ${DBS[*]} " == *" $1 "* ]]; }

# ---------------------------------------------------------------------------
# 1. Tools and build (idempotent)

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }
apt_install() {
    log "installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends "$@" ||
        { as_root apt-get update && as_root apt-get install -y --no-install-recommends "$@"; }
}
missing=()
for c in wrk curl jq; do command -v "$c" >/dev/null || missing+=("$c"); done
if has_db postgres && [[ -z $(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null) ]]; then
    missing+=(postgresql)
fi
has_db postgres && ! command -v psql >/dev/null && missing+=(postgresql-client)
has_db sqlite && ! command -v sqlite3 >/dev/null && missing+=(sqlite3)
((${#missing[@]} == 0)) || apt_install "${missing[@]}"

if has express && ! (cd "$QS" && node -e "for (const m of ['express', 'ajv', 'ajv-formats', 'morgan', 'pg']) require.resolve(m)" 2>/dev/null); then
    # better-sqlite3 is optional: without a prebuilt binary it compiles
    # with node-gyp; if that fails, the SQLite round is skipped.
    log "npm ci in bench/quickstart"
    (cd "$QS" && npm ci --no-audit --no-fund)
fi
if has express && has_db sqlite &&
    ! (cd "$QS" && node -e "require('better-sqlite3')" 2>/dev/null); then
    log "run.sh: better-sqlite3 is not installed (npm could not build it): no SQLite round"
    DBS=("${DBS[@]/sqlite/}")
    read -r -a DBS <<<"${DBS[*]}"
    ((${#DBS[@]} > 0)) || exit 1
fi

if has tern && [[ -z ${BENCH_QS_BIN:-} ]]; then
    if [[ ! -f $ROOT/build/release/build.ninja ]]; then
        meson setup "$ROOT/build/release" "$ROOT" -Dbuildtype=release -Dwerror=true -Dtests=false
    fi
    ninja -C "$ROOT/build/release" examples/quickstart/tern-quickstart ||
        { log "run.sh: building tern-quickstart failed"; exit 1; }
fi
if has tern && [[ ! -x $TERN_BIN ]]; then
    log "run.sh: no tern-quickstart at $TERN_BIN"
    exit 1
fi

# ---------------------------------------------------------------------------
# 2. Database and servers

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-qs.XXXXXX")
PG_STARTED=0
declare -A PID=() PORT=() URL=() NOTE=()

stop_pid() { # SIGTERM, then SIGKILL after 5 s
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    local k
    for k in "${!PID[@]}"; do stop_pid "${PID[$k]}"; done
    ((PG_STARTED == 0)) || sh "$ROOT/scripts/pg-test.sh" stop || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port below the ephemeral range.
declare -A TAKEN=()
free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 12000))
        [[ -z ${TAKEN[$p]:-} ]] || continue
        [[ -z $(ss -Htln "sport = :$p") ]] || continue
        TAKEN[$p]=1
        echo "$p"
        return
    done
}

PG_URL=""
psql_on() { # psql_on DBNAME SQL...
    local db=$1
    shift
    psql "${PG_URL%/*}/$db" -X -q -v ON_ERROR_STOP=1 -At "$@"
}
# sql KEY SQL: run SQL on the database of KEY (target/db), print the result.
sql() {
    case ${1#*/} in
    postgres) psql_on "qs_${1%/*}" -c "$2" ;;
    sqlite) sqlite3 -cmd ".timeout 5000" "$WORK/${1%/*}.db" "$2" ;;
    esac
}

# new_database KEY: a fresh, empty database for KEY; sets URL[KEY].
new_database() {
    local k=$1 t=${1%/*}
    case ${1#*/} in
    postgres)
        psql_on postgres -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS qs_$t" \
            -c "CREATE DATABASE qs_$t"
        URL[$k]="${PG_URL%/*}/qs_$t"
        ;;
    sqlite)
        rm -f "$WORK/$t.db" "$WORK/$t.db-wal" "$WORK/$t.db-shm"
        URL[$k]="sqlite:$WORK/$t.db"
        ;;
    esac
}

start_target() { # start_target KEY
    local k=$1 t=${1%/*} port out
    port=$(free_port)
    out="$WORK/${k/\//-}.log"
    case $t in
    tern) env DATABASE_URL="${URL[$k]}" "$TERN_BIN" --port "$port" --workers "$WORKERS" >"$out" 2>&1 & ;;
    express) env DATABASE_URL="${URL[$k]}" WORKERS="$WORKERS" HOST=127.0.0.1 \
        node "$QS/express-users.js" "$port" >"$out" 2>&1 & ;;
    esac
    PID[$k]=$!
    PORT[$k]=$port
}

wait_ready() { # until GET /users/1 gets an HTTP answer (15 s)
    local k=$1 i code
    for ((i = 0; i < 150; i++)); do
        kill -0 "${PID[$k]}" 2>/dev/null || return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:${PORT[$k]}/users/1") || true
        [[ $code == 000 ]] || return 0
        sleep 0.1
    done
    return 1
}

# seed KEY: users 1..USERS, as the apps would store them.
seed() {
    local ts
    ts=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
    case ${1#*/} in
    postgres)
        psql_on "qs_${1%/*}" -c "INSERT INTO users (name, email, created_at, updated_at)
            SELECT 'User ' || g, 'user' || g || '@seed.example', '$ts', '$ts'
            FROM generate_series(1, $USERS) AS g" -c "VACUUM ANALYZE users" ;;
    sqlite)
        sql "$1" "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $USERS)
            INSERT INTO users (name, email, created_at, updated_at)
            SELECT 'User ' || i, 'user' || i || '@seed.example', '$ts', '$ts' FROM g; ANALYZE" ;;
    esac
}

# reset KEY: delete the users added since seeding.
reset() {
    case ${1#*/} in
    postgres) psql_on "qs_${1%/*}" -c "DELETE FROM users WHERE id > $USERS" -c "VACUUM users" ;;
    sqlite) sql "$1" "DELETE FROM users WHERE id > $USERS; PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null ;;
    esac
}

# verify KEY: the statuses of a fixed sequence of requests, one line, and
# the problems (after a tab).  Expected: see CHECKS.
CHECKS="POST-new=201 GET-new=200 GET-1=200 GET-missing=404 POST-dup=409 POST-bad=422 POST-extra=422 POST-long=422 GET-abc=422"
verify() {
    local k=$1 b="http://127.0.0.1:${PORT[$1]}" J='Content-Type: application/json' out=() why=()
    local email="check.$RANDOM@example.com" long code id loc body get
    long=$(printf 'x%.0s' {1..101})
    req() { curl -sS --max-time 5 -o "$WORK/v.body" -D "$WORK/v.hdr" -w '%{http_code}' "$@" 2>/dev/null || true; }
    code=$(req -X POST "$b/users" -H "$J" -d "{\"name\":\"Check\",\"email\":\"$email\"}")
    out+=("POST-new=$code")
    body=$(jq -cS . "$WORK/v.body" 2>/dev/null || true)
    id=$(jq -r '.id // empty' <<<"$body" 2>/dev/null || true)
    loc=$(tr -d '\r' <"$WORK/v.hdr" | sed -n 's/^location:[[:space:]]*//Ip')
    [[ $(jq -c 'keys' <<<"$body" 2>/dev/null) == '["created_at","email","id","name","updated_at"]' ]] ||
        why+=("201 body: $body")
    [[ $(jq -r '.name + " " + .email' <<<"$body" 2>/dev/null) == "Check $email" ]] || why+=("201 body fields")
    [[ -n $id && $loc == "/users/$id" ]] || why+=("Location '$loc' for id '$id'")
    code=$(req "$b/users/${id:-0}")
    out+=("GET-new=$code")
    get=$(jq -cS . "$WORK/v.body" 2>/dev/null || true)
    [[ -n $get && $get == "$body" ]] || why+=("GET /users/$id differs from the 201 body")
    out+=("GET-1=$(req "$b/users/1")")
    out+=("GET-missing=$(req "$b/users/999999999")")
    out+=("POST-dup=$(req -X POST "$b/users" -H "$J" -d "{\"name\":\"Dup\",\"email\":\"user1@seed.example\"}")")
    out+=("POST-bad=$(req -X POST "$b/users" -H "$J" -d '{"name":"","email":"nope"}')")
    out+=("POST-extra=$(req -X POST "$b/users" -H "$J" -d "{\"name\":\"X\",\"email\":\"x.$RANDOM@example.com\",\"admin\":true}")")
    out+=("POST-long=$(req -X POST "$b/users" -H "$J" -d "{\"name\":\"$long\",\"email\":\"y.$RANDOM@example.com\"}")")
    out+=("GET-abc=$(req "$b/users/abc")")
    [[ ${out[*]} == "$CHECKS" ]] || why+=("statuses differ from: $CHECKS")
    printf '%s\t%s\n' "${out[*]}" "$(IFS=';'; echo "${why[*]}")"
}

# ---------------------------------------------------------------------------
# 3. Measuring

cpu_ticks() { # user+system ticks of PID and its children
    local p total=0 stat
    [[ $1 =~ ^[1-9][0-9]*$ ]] || { echo 0; return; }
    for p in "$1" $(pgrep -P "$1" || true); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) }
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)
pg_pid() { # the postmaster (its backends are its children)
    local data
    data=$(sed -n "s/^PG_DATA='\(.*\)'\$/\1/p" "$TERN_PG_STATE" 2>/dev/null)
    head -n 1 "$data/postmaster.pid" 2>/dev/null || true
}

run_wrk() { # run_wrk KEY SECONDS TAG: prints the BENCH line (or nothing)
    timeout -k 5 $(($2 + 30)) wrk -t "$THREADS" -c "$CONNS" -d "${2}s" --timeout 8 \
        -s "$QS/mix.lua" -H "Accept: application/json" \
        "http://127.0.0.1:${PORT[$1]}" -- "$USERS" "$3" 2>&1 | grep '^BENCH ' || true
}
field() {
    local kv
    for kv in $1; do [[ $kv == "$2="* ]] && { echo "${kv#*=}"; return; }; done
    echo 0
}

declare -A RPS=() P99=() NON2XX=() SOCK=() CPU=() DBCPU=() POSTS=()
NONCE=$(printf '%04x%04x' $RANDOM $RANDOM)

measure() { # measure KEY ROUND
    local k=$1 r=$2 tag line c0 c1 d0=0 d1=0 req added pct cpu db="" sock non
    tag="${k/\//-}-r$r-$NONCE"
    reset "$k"
    run_wrk "$k" "$WARMUP" "${tag}-w" >/dev/null
    reset "$k"
    c0=$(cpu_ticks "${PID[$k]}")
    [[ ${k#*/} != postgres ]] || d0=$(cpu_ticks "$(pg_pid)")
    line=$(run_wrk "$k" "$DURATION" "$tag")
    c1=$(cpu_ticks "${PID[$k]}")
    [[ ${k#*/} != postgres ]] || d1=$(cpu_ticks "$(pg_pid)")
    if [[ -z $line ]]; then
        log "  round $r  $(printf '%-16s' "$k") wrk failed"
        NOTE[$k]+="wrk failed in round $r; "
        return
    fi
    req=$(field "$line" requests)
    added=$(sql "$k" "SELECT count(*) FROM users WHERE id > $USERS")
    sock=$(($(field "$line" connect) + $(field "$line" read) + $(field "$line" write) + $(field "$line" timeout)))
    non=$(field "$line" non2xx)
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
    RPS[$k]+="$(field "$line" rps) "
    P99[$k]+="$(field "$line" p99_us) "
    NON2XX[$k]+="$non "
    SOCK[$k]+="$sock "
    CPU[$k]+="$cpu "
    pct=$(awk -v a="$added" -v n="$req" 'BEGIN { printf "%.1f", (n > 0 ? a * 100 / n : 0) }')
    POSTS[$k]+="$pct "
    if [[ ${k#*/} == postgres ]]; then
        db=$(awk -v d=$((d1 - d0)) -v hz="$CLK_TCK" -v n="$req" 'BEGIN { printf "%.1f", (n > 0 ? d * 1e6 / hz / n : 0) }')
        DBCPU[$k]+="$db "
        db=" db $db us/resp"
    fi
    log "$(printf '  round %d  %-16s %9.0f req/s  p99 %7.2f ms  cpu %6.1f us/resp%s  non-2xx %d  socket errors %d  rows added %d (%s%% of responses)' \
        "$r" "$k" "$(field "$line" rps)" "$(awk -v u="$(field "$line" p99_us)" 'BEGIN { print u / 1000 }')" \
        "$cpu" "$db" "$non" "$sock" "$added" "$pct")"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print 0; exit }
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sum() { tr ' ' '\n' | grep . | awk '{ s += $1 } END { print s + 0 }'; }
spread() {
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f%%", ((NR > 0 && m > 0) ? (v[NR] - v[1]) * 100 / m : 0) }'; }

# ---------------------------------------------------------------------------
# 4. Run

log "tern quickstart load check: ${TARGETS[*]} on ${DBS[*]}; 80% GET /users/:id, 20% POST /users;" \
    "$ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up); wrk -t$THREADS -c$CONNS; $WORKERS workers each;" \
    "$USERS seeded users"
log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
read -r load1 _ </proc/loadavg
awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }' &&
    log "WARNING: load average $load1 before the run: the machine is not idle"
npm_version() { (cd "$QS" && node -p "require('$1/package.json').version" 2>/dev/null) || echo -; }
log "versions: $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2); node $(node -v 2>/dev/null || echo -);" \
    "express $(npm_version express); ajv $(npm_version ajv); ajv-formats $(npm_version ajv-formats);" \
    "morgan $(npm_version morgan); pg $(npm_version pg); better-sqlite3 $(npm_version better-sqlite3)"

if has_db postgres; then
    PG_URL=$(sh "$ROOT/scripts/pg-test.sh" start) || { log "run.sh: PostgreSQL did not start"; exit 1; }
    PG_STARTED=1
    log "PostgreSQL $(psql_on postgres -c 'SHOW server_version' | cut -d' ' -f1) at $PG_URL" \
        "(state $TERN_PG_STATE; synchronous_commit $(psql_on postgres -c 'SHOW synchronous_commit'))"
fi
if has_db sqlite; then
    log "SQLite: tern $(sqlite3 --version | cut -d' ' -f1) (the system library)," \
        "better-sqlite3 $( (cd "$QS" && node -p "require('better-sqlite3')(':memory:').prepare('select sqlite_version() v').get().v") 2>/dev/null || echo -) (bundled); files in $WORK"
fi

status=0
KEYS=()
for d in "${DBS[@]}"; do
    for t in "${TARGETS[@]}"; do
        k=$t/$d
        new_database "$k"
        start_target "$k"
        if ! wait_ready "$k"; then
            log "WARNING: $k did not start; its log:"
            tail -n 20 "$WORK/${k/\//-}.log" >&2 || true
            NOTE[$k]="not running; "
            status=1
            continue
        fi
        seed "$k"
        KEYS+=("$k")
        log "started $k: pid ${PID[$k]}, port ${PORT[$k]}, ${URL[$k]}"
    done
done

for k in "${KEYS[@]}"; do
    IFS=$'\t' read -r got why < <(verify "$k")
    log "check $(printf '%-16s' "$k") $got${why:+  PROBLEMS: $why}"
    if [[ -n $why ]]; then
        NOTE[$k]+="VERIFY FAILED: $why; "
        status=1
    fi
done
((${#KEYS[@]} > 0)) || { log "run.sh: nothing is running"; exit 1; }

for ((r = 1; r <= ROUNDS; r++)); do
    for d in "${DBS[@]}"; do
        run=()
        for t in "${TARGETS[@]}"; do [[ " ${KEYS[*]} " == *" $t/$d "* ]] && run+=("$t/$d"); done
        n=${#run[@]}
        ((n > 0)) || continue
        order=()
        for ((i = 0; i < n; i++)); do order+=("${run[(i + r - 1) % n]}"); done
        log "round $r/$ROUNDS $d: ${order[*]}"
        for k in "${order[@]}"; do measure "$k" "$r"; done
    done
done

# ---------------------------------------------------------------------------
# 5. Report: one table per database

noisy="" # target/database pairs whose req/s varied more than 20 % between rounds

for d in "${DBS[@]}"; do
    base=""
    for t in tern "${TARGETS[@]}"; do [[ -n ${RPS[$t/$d]:-} ]] && { base=$t; break; }; done
    base_rps=$([[ -n $base ]] && median <<<"${RPS[$base/$d]}" || echo 0)
    echo
    echo "== $d: 80% GET /users/:id + 20% POST /users, $CONNS connections, wrk -t$THREADS," \
        "${DURATION}s x $ROUNDS rounds (median) =="
    printf '%-8s %9s %7s %8s %8s %7s %10s %9s %7s %8s  %s\n' target "req/s" spread "p99 ms" non-2xx \
        "sock" "cpu us/rsp" "db us/rsp" "POST %" "$base/x" note
    for t in "${TARGETS[@]}"; do
        k=$t/$d note=${NOTE[$t/$d]:-}
        if [[ -z ${RPS[$k]:-} ]]; then
            printf '%-8s %9s %7s %8s %8s %7s %10s %9s %7s %8s  %s\n' "$t" - - - - - - - - - "WARNING: ${note:-no result}"
            continue
        fi
        rps=$(median <<<"${RPS[$k]}")
        sp=$(spread <<<"${RPS[$k]}")
        awk -v s="${sp%\%}" 'BEGIN { exit !(s > 20) }' && noisy+="$k "
        awk -v t="$t" -v rps="$rps" -v base="$base_rps" -v sp="$sp" \
            -v p99="$(median <<<"${P99[$k]}")" -v non="$(sum <<<"${NON2XX[$k]}")" \
            -v sock="$(sum <<<"${SOCK[$k]}")" -v cpu="$(median <<<"${CPU[$k]}")" \
            -v db="$([[ $d == postgres ]] && median <<<"${DBCPU[$k]}" || echo -)" \
            -v posts="$(median <<<"${POSTS[$k]}")" -v note="${note:+WARNING: $note}" 'BEGIN {
            printf "%-8s %9.0f %7s %8.2f %8d %7d %10.1f %9s %7.1f %8.2f  %s\n", t, rps, sp, p99 / 1000,
                non, sock, cpu, (db == "-" ? "-" : sprintf("%.1f", db)), posts,
                (rps > 0 ? base / rps : 0), note }'
    done
done
echo
echo "req/s, p99, cpu: median over rounds; spread: (max-min)/median of req/s; non-2xx and sock"
echo "(socket errors): summed over rounds; cpu us/rsp: server CPU time per response (all its"
echo "processes); db us/rsp: PostgreSQL's; POST %: rows the run added / responses (expect 20.0);"
echo "$base/x > 1: $base is that many times faster than x."
if [[ -n $noisy ]]; then
    echo "WARNING: req/s varied more than 20 % between rounds for: $noisy"
    echo "  the machine was busy (check top) or the runs were short; compare cpu us/rsp,"
    echo "  or rerun on an idle machine with more rounds (BENCH_ROUNDS=4)."
fi
exit "$status"
