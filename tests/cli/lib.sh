# Shared helpers of the CLI suite; sourced by run-cli-tests.sh and
# known-bugs.sh (POSIX sh). Sets up $ICE, a private temporary directory $W
# (removed on exit), TAP-like reporting and small assertion helpers.
#
#   t_begin NAME          start a case
#   ice ARGS...           run `ice ARGS` (timeout 20 s): $W/out, $W/err, $RC
#   expect_rc N           the last command exited N
#   expect_json EXPR...   python EXPRs over r = stdout JSON (see check.py)
#   expect_events F EXPR...  EXPRs over ev = the JSON lines of file F
#   expect_diag PATH MSG [LINE]  stderr has PATH:LINE:COL: error: ...MSG...
#   expect_err_has TEXT   stderr contains TEXT (fixed string)
#   expect_out_empty      nothing on stdout
#   fail MESSAGE          record a failure of the current case
#   t_end                 print `ok - NAME` or `not ok - NAME` + details

if [ -z "${1:-}" ]; then
  echo "usage: $0 ICE_BINARY" >&2
  exit 2
fi
case $1 in
  /*) ICE=$1 ;;
  *) ICE=$(pwd)/$1 ;;
esac
if [ ! -x "$ICE" ]; then
  echo "$0: $ICE is not an executable" >&2
  exit 2
fi

# ROOT and FIX are used by the case files that source this one.
# shellcheck disable=SC2034
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC2034
ROOT=$(cd "$HERE/../.." && pwd)
# shellcheck disable=SC2034
FIX=$HERE/fixtures
CHECK=$HERE/check.py
W=$(mktemp -d "${TMPDIR:-/tmp}/ice-cli-tests.XXXXXX") || exit 2
# The engine creates each process tool's private TMPDIR under its own
# $TMPDIR: point it into $W so the suite can check they are cleaned up.
mkdir -p "$W/tmp"
TMPDIR=$W/tmp
export TMPDIR
# `ice run` records runs in a store by default: keep the suite's runs in
# its own ICE_HOME, never the user's.
ICE_HOME=$W/ice-home
export ICE_HOME
# A unique marker for the `sleep` processes of this suite run, so that
# pgrep finds only ours: e.g. `sleep 30.12345` (a valid duration).
MARK=$$
BGPIDS=

cleanup() {
  for p in $BGPIDS; do kill -9 "$p" 2>/dev/null; done
  # Children of ours that a buggy engine left behind (unique markers only).
  for p in $(pgrep -f "sleep 3[0-9]\\.$MARK" 2>/dev/null); do kill -9 "$p"; done
  rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PASS=0
FAILED=0
T_NAME=
T_ERRS=

t_begin() {
  T_NAME=$1
  T_ERRS=
  T_START=$(date +%s%N)
}

fail() {
  # Continuation lines of a multi-line message stay inside the comment.
  T_ERRS="$T_ERRS
    # $(printf '%s\n' "$*" | sed '2,$s/^/    #   /')"
}

t_end() {
  # ICE_CLI_TIMING=1 appends each case's wall time (ms) to its line.
  if [ -n "${ICE_CLI_TIMING:-}" ]; then
    T_NAME="$T_NAME ($((($(date +%s%N) - T_START) / 1000000)) ms)"
  fi
  if [ -z "$T_ERRS" ]; then
    PASS=$((PASS + 1))
    echo "ok - $T_NAME"
  else
    FAILED=$((FAILED + 1))
    echo "not ok - $T_NAME$T_ERRS"
  fi
}

# ice ARGS...: runs the binary with a guard (60 s, ICE_T_GUARD); never
# hangs the suite. The guard only catches hangs: the 300,000-node cases of
# the ASan build took over 20 s on two cores loaded three times over.
ice() {
  timeout "${ICE_T_GUARD:-60}" "$ICE" "$@" >"$W/out" 2>"$W/err" </dev/null
  RC=$?
  if [ "$RC" = 124 ]; then
    fail "ice $* did not finish within ${ICE_T_GUARD:-60} s"
  fi
}

expect_rc() {
  if [ "$RC" != "$1" ]; then
    fail "exit status $RC, expected $1; stdout: $(head -c 400 "$W/out"); stderr: $(head -c 600 "$W/err")"
  fi
}

expect_json() {
  if ! python3 -I -S "$CHECK" json "$W/out" "$@" >"$W/chk" 2>&1; then
    fail "$(cat "$W/chk")"
  fi
}

expect_events() {
  f=$1
  shift
  if ! python3 -I -S "$CHECK" events "$f" "$@" >"$W/chk" 2>&1; then
    fail "events: $(cat "$W/chk")"
  fi
}

# re_escape TEXT: TEXT as a literal in an extended regular expression.
re_escape() {
  printf '%s' "$1" | sed 's/[][\\.*^$+?(){}|/]/\\&/g'
}

expect_diag() {
  pat="^$(re_escape "$1"):${3:-[0-9]+}:[0-9]+: error: .*$(re_escape "$2")"
  if ! grep -qE -- "$pat" "$W/err"; then
    fail "no stderr line $1:${3:-LINE}:COL: error: ...$2...; stderr: $(head -c 800 "$W/err")"
  fi
}

expect_err_has() {
  if ! grep -qF -- "$1" "$W/err"; then
    fail "stderr lacks '$1'; stderr: $(head -c 600 "$W/err")"
  fi
}

expect_out_empty() {
  if [ -s "$W/out" ]; then
    fail "stdout should be empty, got: $(head -c 300 "$W/out")"
  fi
}

# Every line of stderr is a diagnostic FILE:LINE:COL: error: MESSAGE.
expect_all_diags() {
  if grep -v -E "^$1:[0-9]+:[0-9]+: error: .+" "$W/err" >"$W/chk"; then
    fail "stderr lines not of the form $1:LINE:COL: error: MSG: $(head -c 400 "$W/chk")"
  fi
}

# no_proc PATTERN: no process whose command line matches PATTERN remains
# (waits up to 2 s for the kernel to reap it).
no_proc() {
  i=0
  while pgrep -f "$1" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 20 ]; then
      fail "a process matching '$1' is still running"
      for p in $(pgrep -f "$1"); do kill -9 "$p" 2>/dev/null; done
      return
    fi
    sleep 0.1
  done
}

# wait_proc PATTERN: waits up to 10 s until such a process exists.
wait_proc() {
  i=0
  until pgrep -f "$1" >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 100 ]; then
      fail "no process matching '$1' appeared"
      return 1
    fi
    sleep 0.1
  done
  return 0
}

# wait_bounded PID: waits for a background job for at most 20 s, sets $RC.
wait_bounded() {
  i=0
  # $2: the bound in seconds (default 20).
  lim=$((${2:-20} * 10))
  while kill -0 "$1" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -ge "$lim" ]; then
      fail "process $1 did not exit within ${2:-20} s"
      kill -9 "$1" 2>/dev/null
      break
    fi
    sleep 0.1
  done
  wait "$1"
  RC=$?
}

# wf NAME: writes stdin to $W/NAME and prints the path.
wf() {
  cat >"$W/$1"
}

summary() {
  echo "$PASS passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}
