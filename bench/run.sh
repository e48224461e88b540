#!/usr/bin/env bash
# bench/run.sh - `make bench`: TechEmpower /plaintext and /json, tern vs
# nginx vs Express vs Fastify, on this machine over loopback; optionally
# POST /validate (a ~1 KiB JSON body parsed, validated against a schema and
# echoed), tern vs Express (ajv) vs Fastify (route schema); optionally the
# TFB database tests /db, /queries, /fortunes, /updates on a private
# PostgreSQL (bench/pg-setup.sh), tern vs Express (pg) vs Fastify (pg).
#
# What it does (details and caveats: bench/README.md):
#   1. installs what is missing (wrk, nginx-light, jq, node_modules), builds
#      tern-tfb in build/release; for database tests starts PostgreSQL in a
#      temp dir and passes DATABASE_URL to every target;
#   2. starts every target on its own free 127.0.0.1 port, each with 2
#      workers, waits until it answers and verifies its responses (database
#      tests: also the query counts, through pg_stat_statements);
#   3. runs wrk in interleaved rounds (the target order rotates each round),
#      a short warm-up before every measured run;
#   4. prints, per test, the median req/s over rounds, p99 latency, errors,
#      server CPU time per response and the ratios to tern.
#
# Settings (environment):
#   BENCH_TARGETS   targets to run, default "tern nginx express fastify kore"
#                   (kore, Debian's kore 4.1, takes part in the database tests
#                   only)
#   BENCH_TESTS     tests to run, default all: "plaintext json validate db
#                   queries fortunes updates".  validate is POST /validate (nginx,
#                   which validates nothing, sits it out); db queries fortunes
#                   updates are the database tests on a private PostgreSQL
#                   (nginx sits them out)
#   BENCH_QUERIES   N for /queries and /updates, default 20
#   BENCH_ROUNDS    measured rounds, default 2
#   BENCH_DURATION  seconds per measured run, default 10 (a trailing s is ok)
#   BENCH_WARMUP    seconds of warm-up before each measured run, default 2
#   BENCH_CONNS     connections for every test; default 256 for plaintext
#                   (pipelining depth 16), 64 for the others (tfb.md
#                   section 6)
#   BENCH_THREADS   wrk threads, default 2
#   BENCH_TERN_BIN  a tern-tfb binary to use instead of building one
#
# CPU placement: nothing is pinned.  With 2 cores, pinning wrk to one core
# and the server to the other would halve every server; instead wrk and the
# server share both cores, the same way for every target.  The CPU time per
# response column shows the server's own cost independently of that sharing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/bench"
TERN_BIN=${BENCH_TERN_BIN:-$ROOT/build/release/bench/tern-tfb}

read -r -a TARGETS <<<"${BENCH_TARGETS:-tern nginx express fastify kore}"
read -r -a TESTS <<<"${BENCH_TESTS:-plaintext json validate db queries fortunes updates}"
ROUNDS=${BENCH_ROUNDS:-2}
DURATION=${BENCH_DURATION:-10}
DURATION=${DURATION%s}
WARMUP=${BENCH_WARMUP:-2}
WARMUP=${WARMUP%s}
THREADS=${BENCH_THREADS:-2}
QUERIES=${BENCH_QUERIES:-20}
WORKERS=2 # server workers/processes for every target

for v in ROUNDS DURATION WARMUP THREADS QUERIES; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "run.sh: $v must be a whole number, got '${!v}'" >&2; exit 2; }
done
((ROUNDS >= 1 && DURATION >= 1 && THREADS >= 1 && QUERIES >= 1 && QUERIES <= 500)) || { echo "run.sh: bad settings" >&2; exit 2; }
((ROUNDS >= 2)) || echo "run.sh: warning: BENCH_ROUNDS=$ROUNDS; the method needs >= 2 rounds" >&2
for t in "${TARGETS[@]}"; do
    case $t in tern | nginx | express | fastify | kore) ;; *) echo "run.sh: unknown target '$t'" >&2; exit 2 ;; esac
done
for t in "${TESTS[@]}"; do
    case $t in
    plaintext | json | validate | db | queries | fortunes | updates) ;;
    *) echo "run.sh: unknown test '$t'" >&2; exit 2 ;;
    esac
done

# POST /validate: the request body (valid against bench/validate/schema.json
# and validate_s in bench/tfb/main.c) and, for the check that invalid input
# is refused, the same body with a bad email.
VALIDATE_BODY=$BENCH/validate/body.json
VALIDATE_BAD_EMAIL=not-an-email

# The TFB Accept headers (toolset/wrk), per test.
ACCEPT_PLAINTEXT='text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
ACCEPT_JSON='application/json,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'

# The database tests and the fortunes page every target must serve, byte for
# byte after normalising equivalent escapes (tfb.md 3.4: 1,226 bytes).
DB_TESTS="db queries fortunes updates"
FORTUNES_HTML=$BENCH/verify/fortunes.html

# Per-test settings: path, connections, pipelining depth, expected body
# (validate: the JSON of VALIDATE_BODY, compared by value; database tests:
# checked by verify_db_body), Content-Type.
declare -A URLPATH=([plaintext]=/plaintext [json]=/json [validate]=/validate [db]=/db
    [queries]="/queries?queries=$QUERIES" [fortunes]=/fortunes [updates]="/updates?queries=$QUERIES")
declare -A CONNS=([plaintext]=${BENCH_CONNS:-256})
declare -A DEPTH=([plaintext]=16)
declare -A ACCEPT=([plaintext]=$ACCEPT_PLAINTEXT)
for t in json validate $DB_TESTS; do
    CONNS[$t]=${BENCH_CONNS:-64} DEPTH[$t]=1 ACCEPT[$t]=$ACCEPT_JSON
done
declare -A BODY=([plaintext]='Hello, World!' [json]='{"message":"Hello, World!"}')
declare -A CTYPE_RE=( # tfb.md section 1
    [plaintext]='^text/plain(; ?charset=(UTF|utf)-8)?$'
    [json]='^application/json(; ?charset=(UTF|utf)-8)?$'
    [validate]='^application/json(; ?charset=(UTF|utf)-8)?$'
    [db]='^application/json(; ?charset=(UTF|utf)-8)?$'
    [queries]='^application/json(; ?charset=(UTF|utf)-8)?$'
    [updates]='^application/json(; ?charset=(UTF|utf)-8)?$'
    [fortunes]='^text/html; ?charset=(UTF|utf)-8$')

log() { printf '%s\n' "$*" >&2; }
has() { [[ " ${TARGETS[*]} " == *" $1 "* ]]; }
has_test() { [[ " ${TESTS[*]} " == *" $1 "* ]]; }
is_db_test() { [[ " $DB_TESTS " == *" $1 "* ]]; }
has_db_test() {
    local t
    for t in "${TESTS[@]}"; do is_db_test "$t" && return 0; done
    return 1
}

# takes_part NAME TEST: whether the target runs the test.  nginx only sends
# constant bytes, so it has no /validate (no parsing, no validation) and no
# database tests; kore runs the database tests only (its 4.1 does not answer
# pipelined requests, see bench/README.md).
takes_part() {
    case $1 in
    nginx) [[ $2 != validate ]] && ! is_db_test "$2" ;;
    kore) is_db_test "$2" ;;
    *) return 0 ;;
    esac
}
# not_run_why NAME TEST: the table note for a target that sits a test out.
not_run_why() {
    case $1 in
    nginx) echo "not run: sends constant bytes, $([[ $2 == validate ]] && echo "has no validation" || echo "has no database")" ;;
    kore) echo "not run: kore takes part in the database tests only" ;;
    esac
}
# needed NAME: whether the target runs at least one of the selected tests.
needed() {
    local test
    for test in "${TESTS[@]}"; do takes_part "$1" "$test" && return 0; done
    return 1
}
any_needed=0
for t in "${TARGETS[@]}"; do needed "$t" && any_needed=1; done
((any_needed)) || { echo "run.sh: none of ${TARGETS[*]} takes part in ${TESTS[*]}" >&2; exit 2; }

# ---------------------------------------------------------------------------
# 1. Tools and build (idempotent)

as_root() { if ((EUID == 0)); then "$@"; else sudo "$@"; fi; }

apt_install() { # apt_install PKG...: install, refreshing the index if needed
    log "installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y --no-install-recommends "$@" ||
        { as_root apt-get update && as_root apt-get install -y --no-install-recommends "$@"; }
}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if { has_test validate || has_db_test; } && ! command -v jq >/dev/null; then missing+=(jq); fi
if has_db_test && [[ -z $(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null) ]]; then
    missing+=(postgresql postgresql-contrib)
fi
if has nginx && needed nginx && ! command -v nginx >/dev/null && [[ ! -x /usr/sbin/nginx ]]; then
    missing+=(nginx-light)
fi
if has kore && needed kore && ! command -v kodev >/dev/null; then missing+=(kore); fi
((${#missing[@]} == 0)) || apt_install "${missing[@]}"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# npm ci when node_modules lacks a dependency of package.json (pg was added).
if { has express || has fastify; } &&
    ! (cd "$BENCH/node" && node -e 'for (const d of Object.keys(require("./package.json").dependencies)) require.resolve(d)') 2>/dev/null; then
    log "npm ci in bench/node"
    (cd "$BENCH/node" && npm ci --no-audit --no-fund)
fi

if has tern && [[ -z ${BENCH_TERN_BIN:-} ]]; then
    if [[ ! -d $ROOT/build/release ]]; then
        meson setup "$ROOT/build/release" "$ROOT" -Dbuildtype=release
    fi
    if ! ninja -C "$ROOT/build/release" bench/tern-tfb; then
        log "run.sh: building tern-tfb failed; to bench the peers only:"
        log "  BENCH_TARGETS='nginx express fastify' bash bench/run.sh"
        exit 1
    fi
fi

# ---------------------------------------------------------------------------
# 2. Servers

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench.XXXXXX")
PGDIR="" # the bench PostgreSQL's directory (database tests only)
declare -A PID=() PORT=() NOTE=()

stop_pid() { # stop_pid PID: SIGTERM, then SIGKILL after 5 s (its children too)
    local pid=$1 i kids
    ((pid > 1)) || return 0
    kids=$(pgrep -P "$pid" || true)
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    # Worker processes left behind by a parent that had to be killed.
    for i in $kids; do kill -KILL "$i" 2>/dev/null || true; done
}

cleanup() {
    local t
    for t in "${!PID[@]}"; do stop_pid "${PID[$t]}"; done
    if [[ -n $PGDIR ]]; then
        bash "$BENCH/pg-setup.sh" stop "$PGDIR" || true
        rm -rf "$PGDIR"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port below the ephemeral range, so that wrk's client ports
# never collide with a listener.
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

start_target() { # start_target NAME: launch in the background, record PID/PORT (1: failed)
    local t=$1 port out
    port=$(free_port)
    out="$WORK/$t.log"
    case $t in
    tern)
        TFB_DB_CONNS=$TERN_PG_CONNS "$TERN_BIN" --host 127.0.0.1 --port "$port" --workers "$WORKERS" \
            >"$out" 2>&1 &
        ;;
    nginx)
        mkdir -p "$WORK/nginx"
        sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$WORK/nginx|g" \
            "$BENCH/nginx/nginx.conf.in" >"$WORK/nginx/nginx.conf"
        "$NGINX" -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" >"$out" 2>&1 &
        ;;
    express | fastify)
        env WORKERS="$WORKERS" HOST=127.0.0.1 PG_POOL_MAX="$NODE_PG_CONNS" \
            node "$BENCH/node/$t.js" "$port" >"$out" 2>&1 &
        ;;
    kore)
        # kodev builds the app in a copy (it writes next to the sources);
        # it needs the app's conf/tfb.conf to exist first.
        local dir="$WORK/kore/tfb"
        mkdir -p "$WORK/kore"
        rm -rf "$dir"
        cp -r "$BENCH/kore" "$dir"
        sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" -e "s|@WORKERS@|$WORKERS|g" \
            -e "s|@PGCONNS@|$KORE_PG_CONNS|g" "$dir/conf/tfb.conf.in" >"$dir/conf/tfb.conf"
        if ! (cd "$dir" && kodev build) >"$WORK/kore-build.log" 2>&1; then
            log "kodev build failed:"
            tail -n 20 "$WORK/kore-build.log" >&2
            return 1
        fi
        (cd "$dir" && exec kore -f -n -r -c conf/tfb.conf) >"$out" 2>&1 &
        ;;
    esac
    PID[$t]=$!
    PORT[$t]=$port
}

# Database connections: tern's pool is shared by its workers, each Node or
# kore worker has its own; 16 in all for each target by default.
# BENCH_PG_CONNS overrides all three (per tern process, per Node/kore worker).
TERN_PG_CONNS=${BENCH_PG_CONNS:-$((8 * WORKERS))}
NODE_PG_CONNS=${BENCH_PG_CONNS:-8}
KORE_PG_CONNS=${BENCH_PG_CONNS:-8}

wait_ready() { # wait_ready NAME: until /plaintext answers (15 s)
    local t=$1 i
    for ((i = 0; i < 150; i++)); do
        kill -0 "${PID[$t]}" 2>/dev/null || return 1
        curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${PORT[$t]}/plaintext" && return 0
        sleep 0.1
    done
    return 1
}

# verify NAME TEST: prints "" when the response passes the TFB checks, else
# the reasons.  Checks status, body, Content-Type, Server, Date (RFC 1123),
# a length header, and (plaintext) that 16 pipelined requests get 16
# responses.  validate POSTs VALIDATE_BODY and expects its JSON back (same
# value; member order and whitespace may differ).  The database tests check
# the body's shape (db_body_problems) and what the verifier checks on the
# database (verify_db).
verify() {
    local t=$1 test=$2 url="http://127.0.0.1:${PORT[$1]}${URLPATH[$2]}" code hdr ctype why=() post=()
    hdr="$WORK/verify.hdr"
    [[ $test != validate ]] ||
        post=(-H 'Content-Type: application/json' --data-binary "@$VALIDATE_BODY")
    code=$(curl -sS --max-time 3 "${post[@]}" -D "$hdr" -o "$WORK/verify.body" -w '%{http_code}' \
        "$url" 2>/dev/null) || code=000
    [[ $code == 200 ]] || why+=("status $code")
    if [[ $test == validate ]]; then
        same_json "$VALIDATE_BODY" "$WORK/verify.body" || why+=("body is not the request's JSON")
    elif is_db_test "$test"; then
        local bad
        bad=$(db_body_problems "$test" "$WORK/verify.body" "$QUERIES")
        [[ -z $bad ]] || why+=("$bad")
    else
        [[ $(cat "$WORK/verify.body" 2>/dev/null) == "${BODY[$test]}" && \
            $(wc -c <"$WORK/verify.body") -eq ${#BODY[$test]} ]] || why+=("body")
    fi
    header() { tr -d '\r' <"$hdr" | sed -n "s/^$1:[[:space:]]*//Ip" | head -n 1; }
    ctype=$(header content-type)
    [[ $ctype =~ ${CTYPE_RE[$test]} ]] || why+=("content-type '$ctype'")
    [[ -n $(header server) ]] || why+=("no Server")
    [[ $(header date) =~ ^[A-Z][a-z]{2},\ [0-9]{2}\ [A-Z][a-z]{2}\ [0-9]{4}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ GMT$ ]] ||
        why+=("Date '$(header date)'")
    [[ -n $(header content-length) || -n $(header transfer-encoding) ]] || why+=("no length")
    if ((${DEPTH[$test]} > 1)); then
        local n
        n=$(pipeline_count "${PORT[$t]}" "/$test" "${DEPTH[$test]}")
        ((n == ${DEPTH[$test]})) || why+=("pipelining: $n/${DEPTH[$test]} answered")
    fi
    if [[ $code == 200 ]] && is_db_test "$test"; then
        local more
        more=$(verify_db "$t" "$test")
        [[ -z $more ]] || why+=("$more")
    fi
    join_why "${why[@]}"
}

# join_why REASON...: the reasons on one line, separated by "; ".
join_why() {
    (($# > 0)) || { echo; return; }
    printf '%s' "$1"
    shift
    (($# == 0)) || printf '; %s' "$@"
    echo
}

# The World object of tfb.md 3.2, exactly: keys id and randomNumber, both
# integers in 1..10000.
JQ_WORLD='def world: type == "object" and keys == ["id", "randomNumber"]
    and ([.id, .randomNumber] | all(type == "number" and . == floor and . >= 1 and . <= 10000));'

# db_body_problems TEST FILE N: "" when FILE is a correct body for TEST
# (N rows for queries and updates), else what is wrong.
db_body_problems() {
    local test=$1 file=$2 n=$3
    case $test in
    db)
        jq -e "$JQ_WORLD world" "$file" >/dev/null 2>&1 ||
            echo "body is not one World object: $(head -c 100 "$file")"
        ;;
    queries | updates)
        jq -e --argjson n "$n" "$JQ_WORLD"' type == "array" and length == $n and all(.[]; world)' \
            "$file" >/dev/null 2>&1 ||
            echo "body is not an array of $n World objects: $(head -c 100 "$file")"
        ;;
    fortunes)
        [[ $(normalize_html <"$file") == "$(normalize_html <"$FORTUNES_HTML")" ]] ||
            echo "fortunes page differs from bench/verify/fortunes.html: $(
                diff <(normalize_html <"$FORTUNES_HTML" | sed 's/<tr>/\n<tr>/g') \
                    <(normalize_html <"$file" | sed 's/<tr>/\n<tr>/g') | grep '^[<>]' | head -n 4 | tr '\n' ' ')"
        ;;
    esac
    if [[ $test != fortunes ]] && grep -q '[[:space:]]' "$file"; then
        echo "whitespace in the JSON (the verifier warns)"
    fi
}

# normalize_html: the fortunes page with whitespace between tags removed and
# equivalent escapes in one form, as the verifier compares it.
normalize_html() {
    tr -d '\r\n' | sed -E -e 's/>[[:space:]]+</></g' -e 's/&#(34|x22);/\&quot;/g' \
        -e "s/&(#39|#x27|apos);/\\&#39;/g" -e 's/&#(62|x3[eE]);/\&gt;/g' -e 's/&#(60|x3[cC]);/\&lt;/g'
}

pg_sql() { bash "$BENCH/pg-setup.sh" psql "$PGDIR" -Atc "$1"; }

# Statements per kind since the last pg_stat_statements_reset(), on
# hello_world: "selects-of-world rows selects-of-fortune rows updates-of-world
# rows other" (other: any other statement naming world or fortune).
PG_COUNTS_SQL="SELECT concat_ws(' ',
    coalesce(sum(calls) FILTER (WHERE k = 'sw'), 0), coalesce(sum(rows) FILTER (WHERE k = 'sw'), 0),
    coalesce(sum(calls) FILTER (WHERE k = 'sf'), 0), coalesce(sum(rows) FILTER (WHERE k = 'sf'), 0),
    coalesce(sum(calls) FILTER (WHERE k = 'uw'), 0), coalesce(sum(rows) FILTER (WHERE k = 'uw'), 0),
    coalesce(sum(calls) FILTER (WHERE k = 'x'), 0))
  FROM (SELECT calls, rows, CASE
      WHEN query ~* '^\\s*select\\M' AND query ~* '\\mworld\\M' THEN 'sw'
      WHEN query ~* '^\\s*select\\M' AND query ~* '\\mfortune\\M' THEN 'sf'
      WHEN query ~* '^\\s*update\\M' AND query ~* '\\mworld\\M' THEN 'uw'
      WHEN query ~* '\\m(world|fortune)\\M' THEN 'x' END AS k
    FROM pg_stat_statements
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'hello_world')
      AND query NOT ILIKE '%pg_stat_statements%') AS s"
VERIFY_REQUESTS=50 # requests per target and test for the query counts

# verify_db NAME TEST: the checks of tfb.md section 4 on the database side.
# queries/updates: the parameter cases (2, 0, foo, 501, empty, absent).
# All: VERIFY_REQUESTS requests on one connection, then the statement counts
# from pg_stat_statements: one select per row (no IN lists), fortunes one
# select of 12 rows, updates N selects plus 1 batched or N single updates
# covering the rows.  updates: the values returned are the values stored.
# Prints the problems, or nothing; logs the counts.
verify_db() {
    local t=$1 test=$2 base="http://127.0.0.1:${PORT[$1]}" why=() q want bad
    if [[ $test == updates ]]; then
        # The main verify request's rows must be what the table now holds
        # (checked first: the cases below update other rows).
        local got stored ids
        got=$(jq -r '.[] | "\(.id)|\(.randomNumber)"' "$WORK/verify.body" | sort -u)
        ids=$(jq -r '[.[].id] | map(tostring) | join(",")' "$WORK/verify.body")
        stored=$(pg_sql "SELECT id || '|' || randomnumber FROM world WHERE id IN ($ids)" | sort -u)
        [[ $got == "$stored" ]] || why+=("returned values are not the stored ones")
    fi
    if [[ $test == queries || $test == updates ]]; then
        for q in "2 2" "0 1" "foo 1" "501 500" "_ 1" "- 1"; do
            read -r arg want <<<"$q"
            case $arg in _) arg="?queries=" ;; -) arg="" ;; *) arg="?queries=$arg" ;; esac
            curl -sS --max-time 5 -o "$WORK/verify.q" "$base/$test$arg" 2>/dev/null || true
            bad=$(db_body_problems "$test" "$WORK/verify.q" "$want")
            [[ -z $bad ]] || why+=("/$test$arg: $bad")
        done
    fi
    local args=() i ok counts k=$VERIFY_REQUESTS n=1
    [[ $test == queries || $test == updates ]] && n=$QUERIES
    for ((i = 0; i < k; i++)); do args+=(-o /dev/null "$base${URLPATH[$test]}"); done
    pg_sql "SELECT pg_stat_statements_reset()" >/dev/null
    ok=$(curl -s --max-time 60 -w '%{http_code}\n' "${args[@]}" | grep -c '^200$' || true)
    counts=$(pg_sql "$PG_COUNTS_SQL")
    read -r sw swr sf sfr uw uwr x <<<"$counts"
    log "$t ${URLPATH[$test]}: $ok/$k ok; statements: select world $sw ($swr rows)," \
        "select fortune $sf ($sfr rows), update world $uw ($uwr rows), other $x"
    ((ok == k)) || why+=("$((k - ok))/$k requests failed")
    ((x == 0)) || why+=("$x other statements on world/fortune")
    case $test in
    db | queries)
        ((sw == k * n && swr == k * n)) || why+=("expected $((k * n)) selects of one row, got $sw ($swr rows)")
        ((sf == 0 && uw == 0)) || why+=("unexpected fortune selects or updates")
        ;;
    fortunes)
        ((sf == k && sfr == 12 * k)) || why+=("expected $k selects of 12 rows, got $sf ($sfr rows)")
        ((sw == 0 && uw == 0)) || why+=("unexpected world statements")
        ;;
    updates)
        ((sw == k * n && swr == k * n)) || why+=("expected $((k * n)) selects of one row, got $sw ($swr rows)")
        ((uw == k || uw == k * n)) || why+=("expected $k batched or $((k * n)) updates, got $uw")
        # An id drawn twice in one request is one row: allow a few percent.
        ((uwr <= k * n && uwr * 100 >= k * n * 95)) || why+=("expected ~$((k * n)) rows updated, got $uwr")
        ;;
    esac
    join_why "${why[@]}"
}

# same_json FILE1 FILE2: both hold the same JSON value (jq -S sorts keys).
same_json() {
    local a b
    a=$(jq -S . "$1" 2>/dev/null) && b=$(jq -S . "$2" 2>/dev/null) && [[ -n $a && $a == "$b" ]]
}

# invalid_status NAME: the status for VALIDATE_BODY with a bad email.  Any
# 4xx is a refusal (tern and Express answer 422, Fastify 400 by default).
invalid_status() {
    local code
    code=$(jq -c --arg e "$VALIDATE_BAD_EMAIL" '.email = $e' "$VALIDATE_BODY" |
        curl -sS --max-time 3 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
            --data-binary @- "http://127.0.0.1:${PORT[$1]}/validate" 2>/dev/null) || code=000
    echo "$code"
}

# pipeline_count PORT PATH N: sends N requests in one write (the last one
# with Connection: close) and counts the 200 responses (a body is not
# newline-terminated, so status lines are matched anywhere).
pipeline_count() {
    local port=$1 path=$2 n=$3 i reqs=""
    for ((i = 1; i <= n; i++)); do
        reqs+="GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\n"
        ((i < n)) || reqs+="Connection: close\r\n"
        reqs+="\r\n"
    done
    timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "%b" "$2" >&3 && cat <&3' \
        _ "$port" "$reqs" 2>/dev/null | grep -ao 'HTTP/1\.1 200 ' | wc -l
}

# ---------------------------------------------------------------------------
# 3. Measuring

# cpu_ticks PID: user+system clock ticks of PID and its child processes
# (nginx, node, kore and PostgreSQL workers are children; tern's workers are
# threads).  Children that already exited count through PID's cutime and
# cstime (PostgreSQL backends and Node pool connections come and go).
cpu_ticks() {
    local p total=0 stat
    for p in "$1" $(pgrep -P "$1" || true); do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        stat=${stat##*) } # fields from 3 (state) on; comm may hold spaces
        read -r -a f <<<"$stat"
        total=$((total + f[11] + f[12])) # utime, stime (fields 14, 15)
        [[ $p != "$1" ]] || total=$((total + f[13] + f[14])) # cutime, cstime
    done
    echo "$total"
}
CLK_TCK=$(getconf CLK_TCK)

# run_wrk NAME TEST SECONDS: one wrk run; prints its BENCH line (or nothing).
# GET tests use pipeline.lua (DEPTH requests per write); validate POSTs
# VALIDATE_BODY with post.lua.
run_wrk() {
    local t=$1 test=$2 secs=$3 script=pipeline.lua arg=${DEPTH[$2]}
    [[ $test != validate ]] || { script=post.lua arg=$VALIDATE_BODY; }
    timeout -k 5 $((secs + 30)) wrk -t "$THREADS" -c "${CONNS[$test]}" -d "${secs}s" --timeout 8 \
        -s "$BENCH/wrk/$script" \
        -H "Accept: ${ACCEPT[$test]}" -H "Connection: keep-alive" \
        "http://127.0.0.1:${PORT[$t]}${URLPATH[$test]}" -- "$arg" 2>&1 |
        grep '^BENCH ' || true
}

field() { # field LINE KEY: the value of KEY=... in a BENCH line
    local kv
    for kv in $1; do [[ $kv == "$2="* ]] && { echo "${kv#*=}"; return; }; done
    echo 0
}

# Results, one space-separated list per target/test (one value per round).
# DBCPU: PostgreSQL's CPU time per response (database tests).
declare -A RPS=() P99=() ERRS=() CPU=() DBCPU=()

# pg_pid: the bench PostgreSQL's postmaster (its backends are its children).
pg_pid() { head -n 1 "$PGDIR/data/postmaster.pid" 2>/dev/null; }

measure() { # measure NAME TEST ROUND
    local t=$1 test=$2 round=$3 line c0 c1 d0=0 d1=0 req cpu_us db_us="" errs detail=""
    run_wrk "$t" "$test" "$WARMUP" >/dev/null
    c0=$(cpu_ticks "${PID[$t]}")
    ! is_db_test "$test" || d0=$(cpu_ticks "$(pg_pid)")
    line=$(run_wrk "$t" "$test" "$DURATION")
    c1=$(cpu_ticks "${PID[$t]}")
    ! is_db_test "$test" || d1=$(cpu_ticks "$(pg_pid)")
    if [[ -z $line ]]; then
        log "  round $round  $(printf '%-9s %-8s' "$test" "$t")  wrk failed"
        NOTE[$t/$test]+="wrk failed in round $round; "
        return
    fi
    req=$(field "$line" requests)
    errs=$(($(field "$line" connect) + $(field "$line" read) + $(field "$line" write) +
        $(field "$line" timeout) + $(field "$line" non2xx)))
    ((errs == 0)) || detail=" (connect/read/write/timeout/non-2xx $(field "$line" connect)/$(field "$line" read)/$(field "$line" write)/$(field "$line" timeout)/$(field "$line" non2xx))"
    cpu_us=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v n="$req" \
        'BEGIN { printf "%.3f", (n > 0 ? d * 1e6 / hz / n : 0) }')
    RPS[$t/$test]+="$(field "$line" rps) "
    P99[$t/$test]+="$(field "$line" p99_us) "
    ERRS[$t/$test]+="$errs "
    CPU[$t/$test]+="$cpu_us "
    if is_db_test "$test"; then
        db_us=$(awk -v d=$((d1 - d0)) -v hz="$CLK_TCK" -v n="$req" \
            'BEGIN { printf "%.3f", (n > 0 ? d * 1e6 / hz / n : 0) }')
        DBCPU[$t/$test]+="$db_us "
        db_us=$(printf '  db %7.2f us/resp' "$db_us")
    fi
    log "$(printf '  round %d  %-9s %-8s %12.0f req/s  p99 %8.2f ms  cpu %6.2f us/resp%s  errors %d%s' \
        "$round" "$test" "$t" "$(field "$line" rps)" \
        "$(awk -v u="$(field "$line" p99_us)" 'BEGIN { print u / 1000 }')" "$cpu_us" "$db_us" "$errs" \
        "$detail")"
}

median() { tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print 0; exit }
    print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
sum() { tr ' ' '\n' | grep . | awk '{ s += $1 } END { print s + 0 }'; }
spread() { # (max - min) / median over rounds, in percent
    tr ' ' '\n' | grep . | sort -g | awk '{ v[NR] = $1 } END {
        m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        printf "%.1f%%", ((NR > 0 && m > 0) ? (v[NR] - v[1]) * 100 / m : 0) }'; }

# ---------------------------------------------------------------------------
# 4. Run

log "tern TFB bench: targets ${TARGETS[*]}; tests ${TESTS[*]}; $ROUNDS rounds of ${DURATION}s" \
    "(+${WARMUP}s warm-up); wrk -t$THREADS; $WORKERS server workers each; no CPU pinning"
log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), $(uname -sr)"
# Other work on this machine skews every number; say so up front.
read -r load1 _ </proc/loadavg
awk -v l="$load1" 'BEGIN { exit !(l > 0.5) }' &&
    log "WARNING: load average $load1 before the run: the machine is not idle"
npm_version() { node -p "require('$BENCH/node/node_modules/$1/package.json').version" 2>/dev/null || echo -; }
log "versions: $(wrk -v 2>&1 | head -n 1 | cut -d' ' -f1-2);" \
    "$({ [[ -x $NGINX ]] && "$NGINX" -v 2>&1 | sed 's/.*: //'; } || echo "nginx -");" \
    "node $(node -v 2>/dev/null || echo -); express $(npm_version express);" \
    "fastify $(npm_version fastify); ajv $(npm_version ajv); ajv-formats $(npm_version ajv-formats);" \
    "pg $(npm_version pg); kore $({ command -v kore >/dev/null && kore -v 2>&1 | head -n 1; } || echo -)"

# The database tests: a private PostgreSQL (bench/pg-setup.sh) whose URL
# every target gets as DATABASE_URL.
if has_db_test; then
    PGDIR=$(mktemp -d "${TMPDIR:-/tmp}/tern-bench-pg.XXXXXX")
    if ! DATABASE_URL=$(bash "$BENCH/pg-setup.sh" start "$PGDIR"); then
        log "run.sh: the bench PostgreSQL did not start"
        exit 1
    fi
    export DATABASE_URL
    log "PostgreSQL $(pg_sql 'SHOW server_version' | cut -d' ' -f1): $DATABASE_URL" \
        "(synchronous_commit $(pg_sql 'SHOW synchronous_commit'))"
fi

status=0
RUNNING=()
declare -A INVALID=() # validate: the status each target gives an invalid body
for t in "${TARGETS[@]}"; do
    if ! needed "$t"; then
        log "skipping $t: it takes part in none of: ${TESTS[*]}"
        continue
    fi
    if start_target "$t" && wait_ready "$t"; then
        RUNNING+=("$t")
        log "started $t: pid ${PID[$t]}, port ${PORT[$t]}"
    else
        log "WARNING: $t did not start or answer; its log:"
        tail -n 20 "$WORK/$t.log" >&2 || true
        for test in "${TESTS[@]}"; do NOTE[$t/$test]="not running"; done
        status=1
    fi
done

for t in "${RUNNING[@]}"; do
    for test in "${TESTS[@]}"; do
        takes_part "$t" "$test" || continue
        problems=$(verify "$t" "$test")
        if [[ $test == validate ]]; then
            # Refusing an invalid body is what the test is about; which 4xx
            # is only reported.  Accepting it means nothing is validated.
            INVALID[$t]=$(invalid_status "$t")
            log "$t /validate: a body with email '$VALIDATE_BAD_EMAIL' gets ${INVALID[$t]}"
            [[ ${INVALID[$t]} == 4?? ]] || problems+="${problems:+; }invalid body answered ${INVALID[$t]}, not 4xx"
        fi
        if [[ -n $problems ]]; then
            log "WARNING: $t /$test fails verification: $problems"
            NOTE[$t/$test]="VERIFY FAILED: $problems; "
            status=1
        fi
    done
done

((${#RUNNING[@]} > 0)) || { log "run.sh: no target is running"; exit 1; }

for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order by one each round, so drift hits every target alike.
    n=${#RUNNING[@]}
    order=()
    for ((i = 0; i < n; i++)); do order+=("${RUNNING[(i + r - 1) % n]}"); done
    log "round $r/$ROUNDS: ${order[*]}"
    for test in "${TESTS[@]}"; do
        for t in "${order[@]}"; do
            takes_part "$t" "$test" || continue
            measure "$t" "$test" "$r"
        done
    done
done

# ---------------------------------------------------------------------------
# 5. Report: one table per test

noisy="" # target/test pairs whose req/s varied more than 20 % between rounds
for test in "${TESTS[@]}"; do
    base=""
    for t in tern "${TARGETS[@]}"; do
        [[ -n ${RPS[$t/$test]:-} ]] && { base=$t; break; }
    done
    base_rps=$([[ -n $base ]] && median <<<"${RPS[$base/$test]}" || echo 0)
    echo
    echo "== ${URLPATH[$test]}: ${CONNS[$test]} connections, pipelining ${DEPTH[$test]}, wrk -t$THREADS," \
        "${DURATION}s x $ROUNDS rounds (median) =="
    # Database tests get a column for PostgreSQL's CPU time per response.
    dbh=""
    ! is_db_test "$test" || dbh=$(printf ' %10s' "db us/rsp")
    printf '%-8s %12s %7s %10s %8s %11s%s %8s %8s  %s\n' \
        target "req/s" spread "p99 ms" errors "cpu us/rsp" "$dbh" "x/$base" "$base/x" note
    dbd=""
    ! is_db_test "$test" || dbd=$(printf ' %10s' -)
    for t in "${TARGETS[@]}"; do
        note=${NOTE[$t/$test]:-}
        if ! takes_part "$t" "$test"; then
            printf '%-8s %12s %7s %10s %8s %11s%s %8s %8s  %s\n' "$t" - - - - - "$dbd" - - \
                "$(not_run_why "$t" "$test")"
            continue
        fi
        if [[ -z ${RPS[$t/$test]:-} ]]; then
            printf '%-8s %12s %7s %10s %8s %11s%s %8s %8s  %s\n' "$t" - - - - - "$dbd" - - \
                "WARNING: ${note:-no result}"
            continue
        fi
        rps=$(median <<<"${RPS[$t/$test]}")
        sp=$(spread <<<"${RPS[$t/$test]}")
        awk -v s="${sp%\%}" 'BEGIN { exit !(s > 20) }' && noisy+="$t/$test "
        awk -v t="$t" -v rps="$rps" -v base="$base_rps" -v sp="$sp" \
            -v p99="$(median <<<"${P99[$t/$test]}")" -v errs="$(sum <<<"${ERRS[$t/$test]}")" \
            -v cpu="$(median <<<"${CPU[$t/$test]}")" -v note="${note:+WARNING: $note}" \
            -v db="$(is_db_test "$test" && median <<<"${DBCPU[$t/$test]}")" 'BEGIN {
            printf "%-8s %12.0f %7s %10.2f %8d %11.2f", t, rps, sp, p99 / 1000, errs, cpu
            if (db != "") printf " %10.2f", db
            printf " %8.2f %8.2f  %s\n", (base > 0 ? rps / base : 0), (rps > 0 ? base / rps : 0), note }'
    done
    if [[ $test == validate ]]; then
        line=""
        for t in "${TARGETS[@]}"; do
            [[ -z ${INVALID[$t]:-} ]] || line+="${line:+, }$t ${INVALID[$t]}"
        done
        echo "invalid body (email '$VALIDATE_BAD_EMAIL'): ${line:-not checked}"
    fi
done
echo
echo "req/s and p99: median over rounds; spread: (max-min)/median of req/s; errors: socket"
echo "errors + non-2xx summed over rounds; cpu us/rsp: server CPU time per response;"
has_db_test && echo "db us/rsp: PostgreSQL's CPU time per response (all its processes);"
echo "x/$base > 1: faster than $base; $base/x > 1: $base is that many times faster."
if [[ -n $noisy ]]; then
    echo "WARNING: req/s varied more than 20 % between rounds for: $noisy"
    echo "  the machine was busy (check top) or the runs were short; compare cpu us/rsp,"
    echo "  or rerun on an idle machine with more rounds (BENCH_ROUNDS=4)."
fi
exit "$status"
