#!/usr/bin/env bash
# Mutation testing of the security decisions: scripts/mutants.conf names the files and functions that decide and
# the tests that cover each; every decision line is mutated, built (ASan+UBSan, in build-mutants/) and tested.
#   scripts/mutants.sh                 all of them; the killed/survived table in build-mutants/mutants.md
#   scripts/mutants.sh --file F        only F (repeatable)
#   scripts/mutants.sh --list          list the mutants, build nothing
#   scripts/mutants.sh --sample        the fixed sample in scripts/mutants-sample.tsv (CI): exit 1 unless all die
# Not part of the suite's run (a full run takes an hour or more); scripts/test.sh runs --sample.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in -h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
bash scripts/deps.sh
exec python3 scripts/mutants.py "$@"
