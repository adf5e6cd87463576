# The `ice` command under a hostile user (issue 6, items 1, 4 and 8 and the
# CLI items): closed standard fds, write errors, SIGHUP, every SPEC flag
# parsed, non-UTF-8 inputs, odd arguments. No crash, no hang, a clear
# message and the right exit status.

HELLO=$ROOT/examples/hello.json

# run_fds REDIRS ARGS...: runs ice with REDIRS applied last (they may close
# fds); stdout/stderr go to $W/out and $W/err unless REDIRS closes them.
run_fds() {
  r=$1
  shift
  : >"$W/out"
  : >"$W/err"
  case $r in
    '<&-') timeout 20 "$ICE" "$@" >"$W/out" 2>"$W/err" <&- ;;
    '>&-') timeout 20 "$ICE" "$@" 2>"$W/err" </dev/null >&- ;;
    '2>&-') timeout 20 "$ICE" "$@" >"$W/out" </dev/null 2>&- ;;
  esac
  RC=$?
}

# --- item 1: fds 0, 1, 2 closed --------------------------------------------

t_begin "hostile-cli: run with stdin closed runs normally (no libuv abort)"
run_fds '<&-' run "$HELLO"
expect_rc 0
expect_json 'r["success"] is True and r["output"]["hello"] == {"msg": "hi"}'
t_end

t_begin "hostile-cli: run with stderr closed runs normally"
run_fds '2>&-' run "$HELLO"
expect_rc 0
expect_json 'r["success"] is True'
t_end

t_begin "hostile-cli: run with stdout closed runs, then exits 1: the result is lost"
run_fds '>&-' run "$HELLO"
expect_rc 1
expect_err_has "ice: cannot write the result: standard output is closed"
t_end

t_begin "hostile-cli: validate with stdin, stdout or stderr closed exits 0 or 2 as usual"
wf bad-hc.json <<'J'
{"nodes": [{"id": "a", "type": "tool"}]}
J
for r in '<&-' '>&-' '2>&-'; do
  run_fds "$r" validate "$HELLO"
  [ "$RC" = 0 ] || fail "validate valid file with $r: exit $RC"
  run_fds "$r" validate "$W/bad-hc.json"
  [ "$RC" = 2 ] || fail "validate invalid file with $r: exit $RC"
done
run_fds '>&-' validate "$W/bad-hc.json"
expect_diag "$W/bad-hc.json" "tool_name"
t_end

t_begin "hostile-cli: graph, help and --version with stdout closed exit 1 with a message"
for args in "graph $HELLO" "help" "help run" "--version"; do
  # shellcheck disable=SC2086 # word splitting of $args is intended
  run_fds '>&-' $args
  [ "$RC" = 1 ] || fail "ice $args >&-: exit $RC, expected 1"
  grep -q "standard output is closed" "$W/err" || fail "ice $args >&-: stderr: $(cat "$W/err")"
done
t_end

t_begin "hostile-cli: --events - with stderr closed exits 1 (the events are lost)"
run_fds '2>&-' run "$HELLO" --events -
expect_rc 1
expect_json 'r["success"] is True'
t_end

# --- item 8: write errors ----------------------------------------------------

if [ -w /dev/full ]; then
  t_begin "hostile-cli: a result written to a full disk exits 1 with a message"
  timeout 20 "$ICE" run "$HELLO" >/dev/full 2>"$W/err" </dev/null
  RC=$?
  expect_rc 1
  expect_err_has "ice: cannot write the result: No space left on device"
  t_end

  t_begin "hostile-cli: --events to a full disk: the run finishes, exit 1, one message"
  ice run "$HELLO" --events /dev/full
  expect_rc 1
  expect_json 'r["success"] is True and r["status"] == "completed"'
  expect_err_has "ice: cannot write events to /dev/full: No space left on device"
  [ "$(grep -c 'cannot write events' "$W/err")" = 1 ] || fail "stderr: $(cat "$W/err")"
  t_end

  t_begin "hostile-cli: graph, help and --version to a full disk exit 1"
  for args in "graph $HELLO" "help" "help graph" "--version" "run --help"; do
    # shellcheck disable=SC2086 # word splitting of $args is intended
    timeout 20 "$ICE" $args >/dev/full 2>"$W/err" </dev/null
    RC=$?
    [ "$RC" = 1 ] || fail "ice $args >/dev/full: exit $RC, expected 1"
    grep -q "No space left on device" "$W/err" || fail "ice $args: stderr: $(cat "$W/err")"
  done
  t_end
fi

t_begin "hostile-cli: a reader that goes away (| head -c1) is a write error: exit 1"
# A 1 MB result: more than a pipe holds, so the write meets the closed end.
wf big-hc.json <<'J'
{"tools": {"big": {"command": ["sh", "-c", "printf '{\"x\":\"'; head -c 1000000 /dev/zero | tr '\\000' a; printf '\"}'"]}},
 "nodes": [{"id": "b", "type": "tool", "tool_name": "big"}]}
J
{
  timeout 20 "$ICE" run "$W/big-hc.json" 2>"$W/err" </dev/null
  echo $? >"$W/rc"
} | head -c1 >/dev/null
RC=$(cat "$W/rc")
expect_rc 1
expect_err_has "ice: cannot write the result: Broken pipe"
t_end

# --- item 4: SIGHUP ------------------------------------------------------------

t_begin "hostile-cli: SIGHUP cancels like SIGTERM: exit 130, no tool and no temp dir left"
marker="sleep 36\\.$MARK"
cat >"$W/hup.json" <<J
{"name": "hup", "tools": {"long": {"command": ["sh", "-c", "sleep 36.$MARK; echo {}"]}},
 "nodes": [{"id": "long", "type": "tool", "tool_name": "long"},
           {"id": "quick", "type": "tool", "tool_name": "echo"}]}
J
mkdir -p "$W/tmp-hup"
TMPDIR=$W/tmp-hup "$ICE" run "$W/hup.json" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "$marker"; then
  kill -HUP "$pid"
fi
wait_bounded "$pid"
expect_rc 130
expect_json 'r["status"] == "cancelled" and r["nodes"]["long"]["status"] == "cancelled"' \
  'r["nodes"]["quick"]["status"] == "completed"'
no_proc "$marker"
left=$(ls -A "$W/tmp-hup")
[ -z "$left" ] || fail "left in TMPDIR: $left"
t_end

t_begin "hostile-cli: under nohup (SIGHUP ignored) a SIGHUP does not cancel the run"
cat >"$W/nohup.json" <<J
{"tools": {"short": {"command": ["sh", "-c", "sleep 1.$MARK; echo {}"]}},
 "nodes": [{"id": "short", "type": "tool", "tool_name": "short"}]}
J
(
  trap '' HUP
  exec "$ICE" run "$W/nohup.json" >"$W/out" 2>"$W/err" </dev/null
) &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "sleep 1\\.$MARK"; then
  kill -HUP "$pid"
fi
wait_bounded "$pid"
expect_rc 0
expect_json 'r["status"] == "completed"'
t_end

# --- SPEC §11 flags ------------------------------------------------------------

t_begin "hostile-cli: run --no-interactive is accepted"
ice run "$HELLO" --no-interactive
expect_rc 0
expect_json 'r["success"] is True'
ice help run
grep -qF -- "--no-interactive" "$W/out" || fail "help run lacks --no-interactive"
t_end

t_begin "hostile-cli: --tools (run, validate, graph) with a missing file: exit 2 naming it"
for args in "run $HELLO --tools $W/no-such-tools.yaml" \
            "validate --tools $W/no-such-tools.yaml $HELLO" \
            "graph $HELLO --tools $W/no-such-tools.yaml" \
            "graph $HELLO --tools=$W/no-such-tools.yaml"; do
  # shellcheck disable=SC2086 # word splitting of $args is intended
  ice $args
  [ "$RC" = 2 ] || fail "ice $args: exit $RC, expected 2"
  grep -qF "$W/no-such-tools.yaml: error: cannot read the tool file: No such file or directory" "$W/err" ||
    fail "ice $args: stderr: $(cat "$W/err")"
  [ -s "$W/out" ] && fail "ice $args printed: $(head -c 200 "$W/out")"
done
ice run "$HELLO" --tools
expect_rc 2
expect_err_has "--tools needs a FILE"
ice run "$HELLO" --tools=
expect_rc 2
expect_err_has "--tools needs a FILE"
t_end

t_begin "hostile-cli: --name=VALUE is the same as --name VALUE"
ice run "$HELLO" --max-parallel=2 --input=k=v --events="$W/ev-eq" --output-only
expect_rc 0
expect_json 'r == {"hello": {"msg": "hi"}}'
[ -s "$W/ev-eq" ] || fail "no events written to $W/ev-eq"
ice run "$HELLO" --quiet=1
expect_rc 2
expect_err_has "--quiet takes no value"
t_end

# --- strings from outside: inputs that are not UTF-8 ----------------------------

# stderr_is_utf8: the message itself carries no invalid byte.
stderr_is_utf8() {
  python3 -c 'import sys; open(sys.argv[1], "rb").read().decode("utf-8")' "$W/err" 2>/dev/null ||
    fail "stderr is not UTF-8: $(od -c "$W/err" | head -5)"
}

t_begin "hostile-cli: --input with a value or key that is not UTF-8 is bad usage naming it"
ice run "$HELLO" --input "$(printf 'k=caf\351')"
expect_rc 2
expect_out_empty
expect_err_has "--input 'k=caf\\xE9' is not valid UTF-8 (byte 0xE9 at offset 5)"
stderr_is_utf8
# The key used to vanish silently (exit 0).
ice run "$HELLO" --input "$(printf 'k\351=cafe')"
expect_rc 2
expect_out_empty
expect_err_has "--input 'k\\xE9=cafe' is not valid UTF-8"
t_end

t_begin "hostile-cli: --inputs JSON or @FILE that is not UTF-8 is bad usage with its position"
ice run "$HELLO" --inputs "$(printf '{"k": "caf\351"}')"
expect_rc 2
expect_err_has "--inputs is not valid UTF-8 (byte 0xE9 at offset 10)"
stderr_is_utf8
printf '{"a": 1,\n "k": "caf\351"}\n' >"$W/in-latin1.json"
ice run "$HELLO" --inputs "@$W/in-latin1.json"
expect_rc 2
expect_err_has "--inputs $W/in-latin1.json:2:11: not valid UTF-8 (byte 0xE9)"
stderr_is_utf8
t_end

# --- odd arguments --------------------------------------------------------------

t_begin "hostile-cli: --inputs @/dev/zero, @missing, @directory fail at once with a clear message"
ice run "$HELLO" --inputs @/dev/zero
expect_rc 2
expect_err_has "--inputs @/dev/zero: contains a NUL byte"
ice run "$HELLO" --inputs "@$W/nonexistent.json"
expect_rc 2
expect_err_has "--inputs @$W/nonexistent.json: No such file or directory"
ice run "$HELLO" --inputs "@$W"
expect_rc 2
expect_err_has "--inputs @$W: Is a directory"
t_end

t_begin "hostile-cli: --inputs @/dev/stdin reads a pipe; an endless one stops at 64 MiB"
printf '{"k": "v"}' | timeout 20 "$ICE" run "$HELLO" --inputs @/dev/stdin >"$W/out" 2>"$W/err"
RC=$?
expect_rc 0
yes | timeout 20 "$ICE" run "$HELLO" --inputs @/dev/stdin >"$W/out" 2>"$W/err"
RC=$?
expect_rc 2
expect_out_empty
expect_err_has "--inputs @/dev/stdin: is larger than 64 MiB"
t_end

t_begin "hostile-cli: --inputs with a key given twice is refused"
ice run "$HELLO" --inputs '{"k": 1, "k": 2}'
expect_rc 2
expect_err_has "duplicate object key"
printf '{"k": 1,\n "k": 2}' >"$W/dup-in.json"
ice run "$HELLO" --inputs "@$W/dup-in.json"
expect_rc 2
expect_err_has "$W/dup-in.json:2:"
t_end

t_begin "hostile-cli: --events to a directory or to the workflow file: exit 2, nothing runs"
ice run "$HELLO" --events "$W"
expect_rc 2
expect_out_empty
expect_err_has "Is a directory"
cp "$HELLO" "$W/self.json"
ice run "$W/self.json" --events "$W/./self.json"
expect_rc 2
expect_out_empty
expect_err_has "is the workflow file"
cmp -s "$HELLO" "$W/self.json" || fail "the workflow file was overwritten"
t_end

t_begin "hostile-cli: --max-parallel out of range, negative, huge or empty: exit 2"
for n in 0 -1 -5 1000001 99999999999999999999 '' ' ' 3x 0x10; do
  ice run "$HELLO" --max-parallel "$n"
  [ "$RC" = 2 ] || fail "--max-parallel '$n': exit $RC, expected 2"
  grep -q "max-parallel needs an integer from 1 to 1000000" "$W/err" ||
    fail "--max-parallel '$n': stderr: $(cat "$W/err")"
done
ice run "$HELLO" --max-parallel 1000000
expect_rc 0
t_end

t_begin "hostile-cli: a missing value after any flag is bad usage naming the flag"
for f in --input --inputs --events --max-parallel; do
  ice run "$HELLO" $f
  [ "$RC" = 2 ] || fail "run $f: exit $RC"
  grep -qF -- "$f" "$W/err" || fail "run $f: stderr: $(cat "$W/err")"
done
ice graph "$HELLO" --format
expect_rc 2
expect_err_has "--format needs dot or mermaid"
t_end

t_begin "hostile-cli: an empty FILE, unknown validate options and -- are handled"
for c in run validate graph; do
  ice $c ""
  [ "$RC" = 2 ] || fail "$c '': exit $RC"
  grep -q "empty string" "$W/err" || fail "$c '': stderr: $(cat "$W/err")"
done
ice validate --bogus "$HELLO"
expect_rc 2
expect_err_has "unknown option '--bogus'"
ice validate -- "$HELLO"
expect_rc 0
ice run -- "$HELLO"
expect_rc 0
t_end
