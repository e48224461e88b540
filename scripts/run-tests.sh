#!/bin/sh
# make test: builds release (-Werror) and ASan+UBSan, runs the whole suite in
# both (unit, integration, fuzz corpus replay), and prints one summary line.
set -u
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
status=0

setup() { # dir, meson args...
    dir=$1; shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null || return 1  # e.g. make run made it without tests
    else
        meson setup "$dir" "$@" >/dev/null || return 1
    fi
}

setup build/release -Dbuildtype=release -Dwerror=true -Dtests=true || status=1
setup build/asan -Dbuildtype=debug -Doptimization=1 -Dwerror=true -Dtests=true \
    -Db_sanitize=address,undefined -Db_lundef=false \
    "-Dc_args=-fno-sanitize-recover=all -fno-omit-frame-pointer" || status=1

# A private PostgreSQL for the db tests (stopped on exit, even on failure).
# If it cannot start, the db tests fail: TERN_TEST_PG_URL stays unset.
pg_state=build/pg-test.state
trap 'sh scripts/pg-test.sh stop "$pg_state"' EXIT
trap 'exit 130' INT TERM
if pg_env=$(sh scripts/pg-test.sh start "$pg_state" >/dev/null && sh scripts/pg-test.sh env "$pg_state"); then
    eval "$pg_env"
    echo "== PostgreSQL for the tests: $TERN_TEST_PG_URL"
else
    echo "!! could not start PostgreSQL: the db tests will fail" >&2
    status=1
fi

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export TERN_LOG=warn

for b in release asan; do
    echo "== build/$b"
    ninja -C build/$b -j "$jobs" || { status=1; continue; }
    mult=1
    [ "$b" = asan ] && mult=3
    meson test -C build/$b --num-processes "$jobs" --timeout-multiplier $mult --print-errorlogs \
        || status=1
done

python3 scripts/test-summary.py build/release build/asan
rc=$?
[ $status -ne 0 ] && [ $rc -eq 0 ] && rc=1
exit $rc
