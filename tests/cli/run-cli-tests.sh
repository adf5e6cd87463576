#!/bin/sh
# End-to-end tests of the `ice` command against SPEC.md (§1-§5.1, §5.3,
# §10, §11). Usage: tests/cli/run-cli-tests.sh ICE_BINARY [CASE...]
# (CASE: a file name under cases/, e.g. 60-signals.sh; default: all).
#
# Prints `ok - NAME` / `not ok - NAME` (with details) per case and ends with
# `N passed, M failed`; exits non-zero when a case failed. Cases live in
# tests/cli/cases/*.sh (sourced in order); static fixtures in
# tests/cli/fixtures/.

# shellcheck source=tests/cli/lib.sh
. "$(dirname "$0")/lib.sh"

shift
if [ $# -eq 0 ]; then
  set -- "$HERE"/cases/*.sh
fi
for f in "$@"; do
  case $f in
    */*) ;;
    *) f=$HERE/cases/$f ;;
  esac
  # shellcheck disable=SC1090
  . "$f"
done

summary
