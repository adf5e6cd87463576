# The run store and resume (SPEC §8.1 answers, §9, §11): ice run records
# every run, ice runs/show/events read it back, ice resume continues a run
# that was killed, paused or is waiting. Every case uses a private store
# ($W/store.db, or $ICE_HOME under $W), never the user's.

D=$FIX/durable
S=$W/store.db
HELLO=$ROOT/examples/hello.json

t_begin "durable: run, then runs / show / events read it back"
ice run "$HELLO" --store "$S" --events "$W/ev-store"
expect_rc 0
cp "$W/out" "$W/run-result"
id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$W/out")
ice runs --store "$S"
expect_rc 0
grep -qE "^$id completed hello [0-9]{4}-" "$W/out" || fail "ice runs: $(cat "$W/out")"
ice show "$id" --store "$S"
expect_rc 0
cmp -s "$W/out" "$W/run-result" || fail "show differs from run: $(cat "$W/out")"
ice events "$id" --store="$S"
expect_rc 0
cmp -s "$W/out" "$W/ev-store" || fail "stored events differ from --events: $(cat "$W/out")"
t_end

t_begin "durable: the store is on by default; --no-store leaves no store file"
ICE_HOME=$W/home-default ice run "$HELLO"
expect_rc 0
[ -s "$W/home-default/runs.db" ] || fail "no default store at \$ICE_HOME/runs.db"
ICE_HOME=$W/home-none ice run "$HELLO" --no-store
expect_rc 0
[ -e "$W/home-none" ] && fail "--no-store created $(ls -R "$W/home-none")"
ice run "$HELLO" --store "$S" --no-store
expect_rc 2
t_end

t_begin "durable: an unknown run id is exit 2 naming it and the store"
for cmd in resume show events; do
  ice "$cmd" nosuchrun --store "$S"
  expect_rc 2
  expect_err_has "ice: no run 'nosuchrun' in the store $S"
  expect_out_empty
done
t_end

t_begin "durable: resume of a completed run prints its result and its status"
ice resume "$id" --store "$S"
expect_rc 0
cmp -s "$W/out" "$W/run-result" || fail "resume printed: $(cat "$W/out")"
t_end

# A chain of process tools, each appending its name to a side-effect file;
# `slow` sleeps until the flag file exists. kill -9 while it sleeps.
SIDE=$W/side
FLAG=$W/resumed
cat >"$W/chain.json" <<J
{"name": "chain",
 "tools": {"step": {"command": ["sh", "-c", "read -r a || true; echo \"\$a\" >> $SIDE; echo {}"], "sandbox": {"writable": ["$W"]}},
           "slow": {"command": ["sh", "-c", "read -r a || true; echo \"\$a\" >> $SIDE; [ -e $FLAG ] || sleep 35.$MARK; echo {}"], "sandbox": {"writable": ["$W"]}}},
 "nodes": [{"id": "s1", "type": "tool", "tool_name": "step", "tool_args": {"n": "s1"}},
           {"id": "s2", "type": "tool", "tool_name": "step", "tool_args": {"n": "s2"}, "dependencies": ["s1"]},
           {"id": "s3", "type": "tool", "tool_name": "step", "tool_args": {"n": "s3"}, "dependencies": ["s2"]},
           {"id": "slow", "type": "tool", "tool_name": "slow", "tool_args": {"n": "slow"}, "dependencies": ["s3"]},
           {"id": "s4", "type": "tool", "tool_name": "step", "tool_args": {"n": "s4"}, "dependencies": ["slow"]},
           {"id": "s5", "type": "tool", "tool_name": "step", "tool_args": {"n": "s5"}, "dependencies": ["s4"]}]}
J
t_begin "durable: kill -9 mid-chain, then resume: completes, no completed node ran twice"
"$ICE" run "$W/chain.json" --store "$S" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "sleep 35\\.$MARK"; then
  kill -9 "$pid"
fi
wait "$pid" 2>/dev/null
for p in $(pgrep -f "sleep 35\\.$MARK"); do kill -9 "$p"; done
cid=$($ICE runs --store "$S" --limit 1 | cut -d' ' -f1)
ice runs --store "$S" --limit 1
grep -q "^$cid running chain " "$W/out" || fail "the killed run is not listed as running: $(cat "$W/out")"
ice show "$cid" --store "$S"
expect_rc 0
expect_json 'r["status"] == "running" and r["workflow"] == "chain"'
expect_err_has "ice resume $cid continues it"
touch "$FLAG"
ice resume "$cid" --store "$S" --events "$W/ev-chain"
expect_rc 0
expect_json "r['run_id'] == '$cid' and r['status'] == 'completed'" \
  'all(n["status"] == "completed" for n in r["nodes"].values()) and len(r["nodes"]) == 6'
for n in s1 s2 s3 s4 s5; do
  c=$(grep -c "\"$n\"" "$SIDE")
  [ "$c" = 1 ] || fail "$n ran $c times: $(cat "$SIDE")"
done
# The resumed run keeps its id and continues its seq.
expect_events "$W/ev-chain" "ev[0]['seq'] > 1 and all(e['run_id'] == '$cid' for e in ev)"
ice show "$cid" --store "$S"
expect_json 'r["status"] == "completed"'
t_end

t_begin "durable: resume refused when the workflow changed, accepted with --force"
rm -f "$FLAG"
"$ICE" run "$W/chain.json" --store "$S" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "sleep 35\\.$MARK"; then
  kill -9 "$pid"
fi
wait "$pid" 2>/dev/null
for p in $(pgrep -f "sleep 35\\.$MARK"); do kill -9 "$p"; done
cid=$($ICE runs --store "$S" --limit 1 | cut -d' ' -f1)
touch "$FLAG"
echo >>"$W/chain.json"
ice resume "$cid" --store "$S"
expect_rc 2
expect_err_has "ice: $W/chain.json changed since run $cid started; use --force to resume anyway"
expect_out_empty
ice resume "$cid" --store "$S" --force
expect_rc 0
expect_json 'r["status"] == "completed"'
t_end

t_begin "durable: a corrupt store file is a clear error (exit 2), no crash"
head -c 4096 /dev/urandom >"$W/bad.db"
printf 'this is not a database' | dd of="$W/bad.db" conv=notrunc 2>/dev/null
for args in "run $HELLO" "runs" "show x" "events x" "resume x"; do
  # shellcheck disable=SC2086 # word splitting of $args is intended
  ice $args --store "$W/bad.db"
  [ "$RC" = 2 ] || fail "ice $args: exit $RC, expected 2: $(cat "$W/err")"
  grep -q "^ice: cannot open the run store '$W/bad.db'" "$W/err" || fail "ice $args: stderr: $(cat "$W/err")"
  grep -qE "Sanitizer|runtime error" "$W/err" && fail "ice $args crashed: $(cat "$W/err")"
  [ -s "$W/out" ] && fail "ice $args printed: $(head -c 200 "$W/out")"
done
t_end

t_begin "durable: a store that cannot be created is a clear error naming --no-store"
: >"$W/plainfile"
ice run "$HELLO" --store "$W/plainfile/sub/store.db"
expect_rc 2
expect_err_has "ice: cannot open the run store '"
expect_err_has "$W/plainfile/sub"
expect_err_has "--no-store"
expect_out_empty
t_end

t_begin "durable: a read-only store directory or file is a clear error, not a crash"
# Root writes anywhere: the case runs ice as nobody (setpriv) then, from a
# copy in a directory nobody can reach ($W is private).
RO=$(mktemp -d /tmp/ice-ro.XXXXXX)
chmod 755 "$RO"
cp "$ICE" "$RO/ice"
cp "$HELLO" "$RO/hello.json"
mkdir "$RO/ro" "$RO/old"
"$ICE" run "$HELLO" --store "$RO/old/store.db" >/dev/null 2>&1 || fail "could not make a store"
chmod 555 "$RO/ro" "$RO/old"
chmod 444 "$RO/old/store.db"
as=""
if [ "$(id -u)" = 0 ]; then
  as="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
# shellcheck disable=SC2086 # $as is a command prefix
timeout 20 $as "$RO/ice" run "$RO/hello.json" --store "$RO/ro/store.db" >"$W/out" 2>"$W/err" </dev/null
RC=$?
expect_rc 2
expect_err_has "ice: cannot open the run store '$RO/ro/store.db': cannot create it in the directory '$RO/ro': Permission denied"
expect_err_has "--no-store"
expect_out_empty
[ -e "$RO/ro/store.db" ] && fail "a store was created in a read-only directory"
# shellcheck disable=SC2086
timeout 20 $as "$RO/ice" runs --store "$RO/old/store.db" >"$W/out" 2>"$W/err" </dev/null
RC=$?
expect_rc 2
expect_err_has "ice: cannot open the run store '$RO/old/store.db': it is read-only for this user"
expect_out_empty
chmod -R u+w "$RO"
rm -rf "$RO"
t_end

t_begin "durable: a human node stops the run as waiting: exit 3, how to answer"
ice run "$D/approval.yaml" --store "$S" --no-interactive
expect_rc 3
expect_json 'r["status"] == "waiting" and r["nodes"]["ok"]["status"] == "waiting"' \
  'r["nodes"]["colour"]["status"] == "waiting" and r["output"] == {"a": {"x": 1}}'
hid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$W/out")
expect_err_has "ice: run $hid is waiting for an answer: ice resume $hid --answer ok=VALUE"
expect_err_has "ice: run $hid is waiting for an answer: ice resume $hid --answer colour=VALUE"
expect_err_has "ice: ok asks: Ship it?"
t_end

t_begin "durable: answers by node, in two resumes; a refused answer changes nothing"
ice resume "$hid" --store "$S" --answer colour=green
expect_rc 2
expect_err_has "green"
expect_out_empty
ice resume "$hid" --store "$S" --answer colour=blue --no-interactive
expect_rc 3
expect_json 'r["nodes"]["colour"]["status"] == "completed" and r["nodes"]["ok"]["status"] == "waiting"'
expect_err_has "--answer ok=VALUE"
ice resume "$hid" --store "$S" --answer "ok=approve:looks good"
expect_rc 0
expect_json 'r["status"] == "completed" and r["output"]["ok"] == {"approved": True, "response": "looks good"}' \
  'r["output"]["colour"]["choice"] == "blue" and r["output"]["z"] == {"done": True}'
t_end

t_begin "durable: run --answer is checked before anything runs"
n_before=$($ICE runs --store "$S" | wc -l)
ice run "$D/approval.yaml" --store "$S" --answer colour=green --events "$W/ev-refused"
expect_rc 2
expect_err_has "ice: --answer colour: "
expect_out_empty
[ -e "$W/ev-refused" ] && fail "the events file was created"
ice run "$D/approval.yaml" --store "$S" --answer nosuch=1
expect_rc 2
ice run "$D/approval.yaml" --store "$S" --answer a=1
expect_rc 2
ice run "$D/approval.yaml" --store "$S" --answer '=x'
expect_rc 2
[ "$($ICE runs --store "$S" | wc -l)" = "$n_before" ] || fail "a refused run was stored"
ice run "$D/approval.yaml" --store "$S" --answer colour=red --answer ok=reject
expect_rc 0
expect_json 'r["output"]["ok"]["approved"] is False and r["output"]["colour"]["choice"] == "red"'
t_end

t_begin "durable: a waiting run without a store says it cannot be resumed"
ice run "$D/approval.yaml" --no-store --answer colour=red
expect_rc 3
expect_err_has "it was not stored (--no-store): run it again with --answer ok=VALUE"
t_end

t_begin "durable: a monitor's log alert is one line on stderr"
ice run "$D/alert.yaml" --store "$S"
expect_rc 0
expect_err_has "ice: monitor watch: alert: nodes_completed >= 1"
[ "$(grep -c 'alert' "$W/err")" = 1 ] || fail "alerts on stderr: $(cat "$W/err")"
t_end

# pty_answers ARGS...: runs `ice ARGS` on a pseudo-terminal, typing a wrong
# choice, then blue, then approve as the prompts come; $W/out holds what the
# terminal showed, $RC the exit status.
pty_answers() {
  python3 -I -S - "$ICE" "$@" >"$W/out" 2>&1 <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
pos = 0
def until(tok):
    # Each token is looked for after the previous one: the second
    # "colour> " must be a new prompt, not the first one again.
    global out, pos
    end = time.time() + 15
    while out.find(tok, pos) < 0 and time.time() < end:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
    i = out.find(tok, pos)
    if i >= 0:
        pos = i + len(tok)
for prompt, answer in ((b"colour> ", b"green\n"), (b"its choices", b""),
                       (b"colour> ", b"blue\n"), (b"ok> ", b"approve\n")):
    until(prompt)
    if answer:
        os.write(fd, answer)
while True:
    try:
        if not select.select([fd], [], [], 15)[0]:
            break
        d = os.read(fd, 4096)
    except OSError:
        break
    if not d:
        break
    out += d
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
  RC=$?
}

for mode in "--store $S" "--no-store"; do
  t_begin "durable: on a terminal the run asks for each answer and goes on ($mode)"
  # shellcheck disable=SC2086 # word splitting of $mode is intended
  pty_answers run "$D/approval.yaml" $mode --quiet
  expect_rc 0
  grep -qF "ice: colour is waiting for an answer: Which colour?" "$W/out" || fail "no prompt: $(cat "$W/out")"
  grep -qF "is not one of its choices" "$W/out" || fail "wrong choice not refused: $(cat "$W/out")"
  grep -qF '"status": "completed"' "$W/out" || fail "not completed: $(cat "$W/out")"
  [ "$(grep -c '"run_id"' "$W/out")" = 1 ] || fail "more than one result printed: $(cat "$W/out")"
  t_end
done

t_begin "durable: use_cache memoises a node across runs by its definition and input"
wf cache.yaml <<Y
tools:
  side: {command: ["sh", "-c", "cat > /dev/null; echo x >> $W/cache-effects; echo '{\"n\": 1}'"], sandbox: {writable: ["$W"]}}
nodes:
  - {id: a, type: tool, tool_name: side, use_cache: true, tool_args: {k: "{{ inputs.k }}"}}
  - {id: t, type: tool, tool_name: side, use_cache: true, cache_ttl_seconds: 0.3, dependencies: [a]}
Y
rm -f "$W/cache-effects"
i=0
for k in 1 1 2; do
  i=$((i + 1))
  ice run "$W/cache.yaml" --store "$W/cache.db" --input k=$k --events "$W/ev-cache-$i"
  expect_rc 0
done
# Run 1 computes a and t; run 2 finds both. Run 3 has another input: the
# context of both differs (it holds the run's inputs), so both run again.
expect_events "$W/ev-cache-1" '[e["cache_hit"] for e in of(ev, "node.completed")] == [False, False]'
expect_events "$W/ev-cache-2" '[e["cache_hit"] for e in of(ev, "node.completed")] == [True, True]'
expect_events "$W/ev-cache-2" 'of(ev, "node.started", "a")[0]["attempt"] == 1'
expect_events "$W/ev-cache-3" '[e["cache_hit"] for e in of(ev, "node.completed")] == [False, False]'
[ "$(wc -l <"$W/cache-effects")" -eq 4 ] || fail "side effects: $(wc -l <"$W/cache-effects"), expected 4"
# Past its ttl, t runs again.
sleep 0.4
ice run "$W/cache.yaml" --store "$W/cache.db" --input k=2 --events "$W/ev-cache-4"
expect_events "$W/ev-cache-4" '[e["cache_hit"] for e in of(ev, "node.completed")] == [True, False]'
# Without a store there is no memo.
ice run "$W/cache.yaml" --no-store --input k=1 --events "$W/ev-cache-5"
expect_events "$W/ev-cache-5" '[e["cache_hit"] for e in of(ev, "node.completed")] == [False, False]'
t_end

t_begin "durable: a file-size limit reached by the store is a clear error (no SIGXFSZ death); the run resumes once there is room"
python3 -I -S -c 'import json
print(json.dumps({"nodes": [{"id": "n%d" % i, "type": "tool", "tool_name": "echo", "tool_args": {"x": "y" * 200}, **({"dependencies": ["n%d" % (i - 1)]} if i else {})} for i in range(3000)]}))' >"$W/fsz.json"
rm -f "$W/fsz.db"*
(ulimit -f 200; timeout 20 "$ICE" run "$W/fsz.json" --store "$W/fsz.db" >/dev/null 2>"$W/err" </dev/null)
RC=$?
expect_rc 1
expect_err_has "the run store is full"
ice runs --store "$W/fsz.db"
fid=$(head -1 "$W/out" | cut -d' ' -f1)
[ -n "$fid" ] || fail "no run recorded"
ice resume "$fid" --store "$W/fsz.db" --output-only
expect_rc 0
expect_json 'len(r) == 3000 and r["n2999"] == {"x": "y" * 200}'
t_end
