#!/bin/sh
# Fails if the shared library exports anything but tern_* symbols, or fewer
# than the public API needs (a sign that visibility broke the other way).
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/ {print $3}' | grep -v '^tern_' || true)
if [ -n "$bad" ]; then
    echo "symbols exported without the tern_ prefix:"
    echo "$bad"
    exit 1
fi
n=$(nm -D --defined-only "$lib" | awk '$2 == "T"' | grep -c '^.* T tern_' || true)
echo "$n tern_* functions exported"
[ "$n" -ge 50 ]
