#!/usr/bin/env bash
# The README's test command: installs what is missing (scripts/setup.sh), then runs every
# test (unit, golden, real-namespace end-to-end, kernel-Geneve VM), and prints
# "N passed, N failed" as its last line.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --with-vm || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
# The tests themselves are type-checked too (tsconfig.json builds src/ only); a type error
# counts as one failed test, so the last line shows it.
typecheck_pass=0; typecheck_fail=0
if npm run -s typecheck; then typecheck_pass=1; else echo "not ok - type check of src/ and test/ (npm run typecheck)"; typecheck_fail=1; fi
# A lab left behind by an earlier interrupted run would make tests clash.
node dist/cli/main.js down --all >/dev/null 2>&1 || true
log=$(mktemp /tmp/ambient-lab-test.XXXXXX)
npx tap --reporter=tap "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^# \{ total' "$log" | tail -1)
pass=0; fail=0
if [ -n "$summary" ]; then
  pass=$(sed -nE 's/.*pass: ([0-9]+).*/\1/p' <<<"$summary"); pass=${pass:-0}
  fail=$(sed -nE 's/.*fail: ([0-9]+).*/\1/p' <<<"$summary"); fail=${fail:-0}
else
  pass=$(grep -cE '^ok ' "$log"); fail=$(grep -cE '^not ok ' "$log")
fi
[ "$rc" != 0 ] && [ "$fail" = 0 ] && fail=1
pass=$((pass + typecheck_pass)); fail=$((fail + typecheck_fail))
# The failures again, just above the summary, so the tail of a long CI log names them.
if [ "$fail" != 0 ] || [ "$typecheck_fail" != 0 ]; then
  echo "# failed:"
  grep -nE '^ *not ok ' "$log" | grep -vE '# (TODO|SKIP)' | tail -40 | sed 's/^/#   /'
fi
# The whole TAP log of the last run is kept for reading afterwards (one file, overwritten).
mv -f "$log" "${AMBIENT_LAB_TEST_LOG:-/var/tmp/ambient-lab-last-test.log}" 2>/dev/null || rm -f "$log"
echo "$pass passed, $fail failed"
exit $([ "$fail" = 0 ] && echo 0 || echo 1)
