# Process tools under hostile conditions (issue 6, items 2, 4 and 5, and
# the smaller ones about cwd and big integers): a killed engine leaves no
# tool behind, error messages keep the end of stderr, and every string a
# tool produces survives into the result and the events.

t_begin "hostile-proc: a tool does not outlive an ice killed with SIGKILL"
wf orphan.json <<J
{"tools": {"nap": {"command": ["sleep", "33.$MARK"]}},
 "nodes": [{"id": "nap", "type": "tool", "tool_name": "nap"}]}
J
"$ICE" run "$W/orphan.json" >"$W/out" 2>"$W/err" </dev/null &
pid=$!
BGPIDS="$BGPIDS $pid"
if wait_proc "sleep 33\\.$MARK"; then
  kill -9 "$pid"
  # The parent-death signal is delivered at once; no_proc allows 2 s.
  no_proc "sleep 33\\.$MARK"
fi
wait "$pid" 2>/dev/null
# A SIGKILLed engine cannot remove its tools' private directories: clear
# them so that later cases see a clean TMPDIR.
rm -rf "$TMPDIR"/ice-tool-*
t_end

t_begin "hostile-proc: the message keeps the last stderr lines (FATAL after 100 lines)"
wf fatal.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "i=0; while [ $i -lt 100 ]; do echo \"progress line $i of a long job\" >&2; i=$((i+1)); done; echo 'FATAL: the real cause' >&2; exit 2"]},
           "u": {"command": ["python3", "-c", "import sys; sys.stderr.buffer.write(b'\\xc3\\xa9' * 3000); sys.exit(3)"]}},
 "nodes": [{"id": "t", "type": "tool", "tool_name": "t"},
           {"id": "u", "type": "tool", "tool_name": "u"}]}
J
ice run "$W/fatal.json"
expect_rc 1
expect_json 'r["nodes"]["t"]["error"]["message"].endswith("\nprogress line 99 of a long job\nFATAL: the real cause")' \
  'r["nodes"]["t"]["error"]["message"].startswith("exit status 2: ...\nprogress line ")' \
  '900 < len(r["nodes"]["t"]["error"]["message"].encode()) <= 1023' \
  'r["errors"][0].endswith("FATAL: the real cause")' \
  're.fullmatch("exit status 3: \\.\\.\\.\u00e9+", r["nodes"]["u"]["error"]["message"])' \
  '900 < len(r["nodes"]["u"]["error"]["message"].encode()) <= 1023'
t_end

t_begin "hostile-proc: a missing cwd is named, not blamed on the command"
wf cwd.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "echo {}"], "cwd": "nonexist"},
           "abs": {"command": ["sh", "-c", "echo {}"], "cwd": "/nonexistent-ice-dir/x"}},
 "nodes": [{"id": "t", "type": "tool", "tool_name": "t"},
           {"id": "abs", "type": "tool", "tool_name": "abs"}]}
J
ice run "$W/cwd.json"
expect_rc 1
expect_json "r['nodes']['t']['error'] == {'kind': 'tool_error', 'message': \"cannot start 'sh': cwd '$W/nonexist': No such file or directory\"}" \
  "r['nodes']['abs']['error']['message'] == \"cannot start 'sh': cwd '/nonexistent-ice-dir/x': No such file or directory\""
# The same workflow given by a relative path still names an absolute cwd.
(cd "$W" && timeout 20 "$ICE" run cwd.json >"$W/out" 2>"$W/err" </dev/null)
expect_json "r['nodes']['t']['error']['message'] == \"cannot start 'sh': cwd '$W/nonexist': No such file or directory\""
t_end

t_begin "hostile-proc: commands that cannot run say why"
mkdir -p "$W/adir"
wf cannot.json <<J
{"tools": {"nf": {"command": ["ice-no-such-command-$MARK"]},
           "dir": {"command": ["$W/adir"]},
           "huge": {"command": ["echo", "$(head -c 3000000 /dev/zero | tr '\0' x)"]}},
 "nodes": [{"id": "nf", "type": "tool", "tool_name": "nf"},
           {"id": "dir", "type": "tool", "tool_name": "dir"},
           {"id": "huge", "type": "tool", "tool_name": "huge"}]}
J
ice run "$W/cannot.json"
expect_rc 1
expect_json "r['nodes']['nf']['error']['message'] == \"cannot start 'ice-no-such-command-$MARK': command not found in PATH\"" \
  "r['nodes']['dir']['error']['message'] == \"cannot start '$W/adir': Is a directory\"" \
  'r["nodes"]["huge"]["error"]["message"] == "cannot start '"'echo'"': Argument list too long"' \
  'all(n["error"]["kind"] == "tool_error" for n in r["nodes"].values())'
t_end

t_begin "hostile-proc: integers past 64 bits in tool output are kept as reals"
wf bigint.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "echo '{\"n\": 123456789012345678901234567890, \"m\": -99999999999999999999, \"s\": \"99999999999999999999\", \"i\": 7, \"l\": [18446744073709551616]}'"]}},
 "nodes": [{"id": "t", "type": "tool", "tool_name": "t"}]}
J
ice run "$W/bigint.json"
expect_rc 0
expect_json 'r["output"]["t"]["n"] == 1.2345678901234568e+29 and isinstance(r["output"]["t"]["n"], float)' \
  'r["output"]["t"]["m"] == -1e20 and r["output"]["t"]["l"] == [18446744073709551616.0]' \
  'r["output"]["t"]["s"] == "99999999999999999999"' \
  'r["output"]["t"]["i"] == 7 and isinstance(r["output"]["t"]["i"], int)'
t_end

t_begin "hostile-proc: tool stdout with bytes that are not UTF-8 is kept (U+FFFD)"
wf latin-out.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "printf '{\"s\": \"caf\\351\", \"caf\\351\": [\"\\377\\376\"]}'"]},
           "nul": {"command": ["sh", "-c", "printf '{\"s\": \"a\\000b\"}'"]},
           "empty": {"command": ["true"]}},
 "nodes": [{"id": "t", "type": "tool", "tool_name": "t"},
           {"id": "nul", "type": "tool", "tool_name": "nul"},
           {"id": "empty", "type": "tool", "tool_name": "empty"}]}
J
ice run "$W/latin-out.json"
expect_rc 1
expect_json 'r["output"]["t"] == {"s": "caf\ufffd", "caf\ufffd": ["\ufffd\ufffd"]}' \
  '"tool output is not JSON" in r["nodes"]["nul"]["error"]["message"]' \
  'r["nodes"]["empty"]["error"]["message"] == "tool output is not JSON (nothing on stdout)"'
t_end

t_begin "hostile-proc: a failing tool whose stderr is not UTF-8 keeps its error everywhere"
wf latin-err.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "printf 'caf\\351 failed\\n' >&2; exit 1"]}},
 "nodes": [{"id": "t1", "type": "tool", "tool_name": "t"}]}
J
ice run "$W/latin-err.json" --events "$W/ev-latin"
expect_rc 1
expect_json 'r["nodes"]["t1"]["error"] == {"kind": "tool_error", "message": "exit status 1: caf\ufffd failed"}' \
  'r["errors"] == ["Node t1 failed: exit status 1: caf\ufffd failed"]' \
  'r["metrics"]["nodes_failed"] == 1'
expect_events "$W/ev-latin" \
  '[(e["attempt"], e["error"], e["will_retry"]) for e in of(ev, "node.failed", "t1")] == [(1, {"kind": "tool_error", "message": "exit status 1: caf\ufffd failed"}, False)]' \
  '[(e["stream"], e["line"]) for e in of(ev, "node.log", "t1")] == [("stderr", "caf\ufffd failed")]'
t_end

t_begin "hostile-proc: tools that misbehave around their pipes end the attempt promptly"
wf pipes.json <<J
{"tools": {"early": {"command": ["sh", "-c", "echo '{\"a\": 1}'; exec >&-; sleep 0.3; echo still here >&2"]},
           "flood": {"command": ["sh", "-c", "head -c 20000000 /dev/zero | tr '\\\\0' x >&2; echo '{\"b\": 2}'"]},
           "gcout": {"command": ["sh", "-c", "sleep 34.$MARK & echo '{\"c\": 3}'"]},
           "gcerr": {"command": ["sh", "-c", "sleep 34.$MARK >&2 & echo oops >&2; exit 3"]}},
 "nodes": [{"id": "early", "type": "tool", "tool_name": "early"},
           {"id": "flood", "type": "tool", "tool_name": "flood"},
           {"id": "gcout", "type": "tool", "tool_name": "gcout"},
           {"id": "gcerr", "type": "tool", "tool_name": "gcerr"}]}
J
ice run "$W/pipes.json"
expect_rc 1
expect_json 'r["output"]["early"] == {"a": 1} and r["output"]["flood"] == {"b": 2} and r["output"]["gcout"] == {"c": 3}' \
  'r["nodes"]["gcerr"]["error"]["message"] == "exit status 3: oops"' \
  'r["nodes"]["gcout"]["duration_ms"] < 900 and r["nodes"]["gcerr"]["duration_ms"] < 900' \
  'r["nodes"]["flood"]["duration_ms"] < 15000'
no_proc "sleep 34\\.$MARK"
t_end

t_begin "hostile-proc: the tool gets default signal dispositions and an empty mask"
wf sigs.json <<'J'
{"tools": {"t": {"command": ["sh", "-c", "exec grep -E '^Sig(Blk|Ign)' /proc/self/status >&2"]}},
 "nodes": [{"id": "t", "type": "tool", "tool_name": "t"}]}
J
ice run "$W/sigs.json" --events "$W/ev-sigs"
expect_events "$W/ev-sigs" \
  '[e["line"] for e in of(ev, "node.log", "t")] == ["SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000"]'
t_end
