# The process sandbox (SPEC §5.2, issue 10). Hostile tools from
# fixtures/sandbox/hostile.yaml each fail their own node only, with the kind
# and the limit named, while a normal node beside them completes; run as the
# suite's user and, when that is root, once more as nobody (setpriv) from a
# world-readable copy of the fixtures. Then strict and sandbox.degraded
# (through the ICE_SANDBOX_REFUSE test hook), the field checks, writable
# paths that do not exist, filesystem: full, and no process left behind.

SBX=$FIX/sandbox
# Every sleep a hostile tool starts is `sleep $SBX_MARK`: what a tool left
# behind is found by that.
SBX_MARK=3599.$MARK

# sbx_listen DIR: a TCP listener on 127.0.0.1 that answers "hi" and appends
# what it got to DIR/got; its port goes to DIR/port. Sets SBX_PORT.
sbx_listen() {
  rm -f "$1/port" "$1/got"
  python3 -I -S -c '
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
with open(sys.argv[1] + "/port.tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + "/port.tmp", sys.argv[1] + "/port")
while True:
    c, _ = s.accept()
    d = c.recv(100)
    with open(sys.argv[1] + "/got", "a") as f:
        f.write(d.decode())
    c.sendall(b"hi")
    c.close()
' "$1" &
  BGPIDS="$BGPIDS $!"
  SBX_LISTENER=$!
  i=0
  while [ ! -s "$1/port" ] && [ $i -lt 100 ]; do
    sleep 0.05
    i=$((i + 1))
  done
  SBX_PORT=$(cat "$1/port")
}

# sbx_copy DIR: a copy of the fixtures in DIR, with the `out` directory the
# writable tool writes into.
sbx_copy() {
  mkdir -p "$1"
  cp -R "$SBX/." "$1/"
  mkdir -p "$1/out"
}

# sbx_hostile NAME DIR [PREFIX...]: runs DIR/hostile.yaml (through PREFIX,
# e.g. setpriv) and checks every node. The engine's pid is the tool's
# target for ptrace: sh execs ice, so $$ is ice.
sbx_hostile() {
  name=$1
  dir=$2
  shift 2
  sbx_listen "$dir"
  start=$(date +%s)
  ICE_T_MARK=$SBX_MARK timeout 60 "$@" sh -c \
    'exec "$0" run "$1" --no-store --max-parallel 16 --input port="$2" --input engine_pid=$$' \
    "$ICE" "$dir/hostile.yaml" "$SBX_PORT" >"$W/out" 2>"$W/err" </dev/null
  RC=$?
  took=$(($(date +%s) - start))
  kill "$SBX_LISTENER" 2>/dev/null
  expect_rc 1
  [ "$took" -le 30 ] || fail "$name: the run took $took s"
  expect_json 'r["status"] == "failed"' \
    'r["nodes"]["normal"]["status"] == "completed" and r["output"]["normal"] == {"ok": True}' \
    'r["nodes"]["forkbomb"]["error"]["kind"] == "resource_limit"' \
    'r["nodes"]["forkbomb"]["error"]["message"].startswith("processes: ")' \
    'r["nodes"]["membomb"]["error"]["kind"] == "resource_limit"' \
    'r["nodes"]["membomb"]["error"]["message"].startswith("memory: ")' \
    'r["nodes"]["cpuspin"]["error"]["kind"] == "resource_limit"' \
    'r["nodes"]["cpuspin"]["error"]["message"].startswith("cpu: ")' \
    'r["nodes"]["sleeper"]["error"]["kind"] == "timeout"' \
    'r["nodes"]["flood"]["error"]["kind"] == "resource_limit"' \
    'r["nodes"]["flood"]["error"]["message"].startswith("output: ")' \
    'r["nodes"]["write_outside"]["error"]["kind"] == "tool_error"' \
    '"Read-only file system" in r["nodes"]["write_outside"]["error"]["message"]' \
    'r["output"]["write_inside"] == {"wrote": True}' \
    'r["nodes"]["connect"]["error"]["kind"] == "tool_error"' \
    '"Permission denied" in r["nodes"]["connect"]["error"]["message"]' \
    'r["output"]["connect_net"] == {"connected": True, "got": "hi"}' \
    'r["nodes"]["shadow"]["error"]["kind"] == "tool_error"' \
    '"Permission denied" in r["nodes"]["shadow"]["error"]["message"]' \
    'r["nodes"]["ptrace"]["error"]["kind"] == "tool_error"' \
    '"Operation not permitted" in r["nodes"]["ptrace"]["error"]["message"]' \
    'r["output"]["leftover"] == {"left": 2}' \
    'r["metrics"]["nodes_completed"] == 4 and r["metrics"]["nodes_failed"] == 9'
  [ -e "$dir/written-outside.txt" ] && fail "$name: a tool wrote outside its writable paths"
  [ "$(cat "$dir/out/written-inside.txt" 2>/dev/null)" = x ] ||
    fail "$name: the writable path was not written"
  grep -q "hello from a tool" "$dir/got" 2>/dev/null ||
    fail "$name: the listener got nothing from connect_net"
  grep -q "hello from a tool" "$dir/got" 2>/dev/null &&
    [ "$(grep -c "hello from a tool" "$dir/got")" != 1 ] &&
    fail "$name: the listener got more than connect_net: $(cat "$dir/got")"
  # Left behind by leftover (one of them setsid), forkbomb, sleeper.
  no_proc "sleep $SBX_MARK"
}

t_begin "sandbox: hostile tools fail their own node only, with the limit named ($(id -un))"
sbx_copy "$W/sbx"
sbx_hostile "as $(id -un)" "$W/sbx"
left=$(ls -A "$TMPDIR")
[ -z "$left" ] || fail "left in TMPDIR: $left"
t_end

t_begin "sandbox: the same hostile tools with ice run as nobody"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null 2>&1; then
  echo "# skipped: needs root and setpriv" >&2
else
  # $W is private to root: nobody needs a world-readable copy, its own
  # TMPDIR, and the writable directory for itself.
  U=$(mktemp -d /tmp/ice-sbx-nobody.XXXXXX)
  chmod 755 "$U"
  sbx_copy "$U/wf"
  cp "$ICE" "$U/ice"
  mkdir "$U/tmp"
  chown 65534:65534 "$U/wf/out" "$U/tmp"
  ICE_SAVED=$ICE
  ICE=$U/ice
  sbx_hostile "as nobody" "$U/wf" setpriv --reuid=65534 --regid=65534 \
    --clear-groups env TMPDIR="$U/tmp"
  ICE=$ICE_SAVED
  left=$(ls -A "$U/tmp")
  [ -z "$left" ] || fail "left in nobody's TMPDIR: $left"
  pgrep -u 65534 -f "$U" >/dev/null && fail "a process of nobody is left: $(pgrep -u 65534 -af "$U")"
  rm -rf "$U"
fi
t_end

t_begin "sandbox: strict fails a node the kernel cannot sandbox; strict: false runs it with sandbox.degraded"
sbx_copy "$W/sbx-deg"
ICE_SANDBOX_REFUSE=net ice run "$W/sbx-deg/degraded.yaml" --no-store --input port=9 --events "$W/ev-deg"
expect_rc 1
expect_json 'r["output"]["relaxed"] == {"ran": True} and r["output"]["builtin"] == {"fine": True}' \
  'r["nodes"]["strict"]["error"]["kind"] == "tool_error"' \
  'r["nodes"]["strict"]["error"]["message"].startswith("sandbox: missing network namespace")' \
  '"sandbox.strict is true" in r["nodes"]["strict"]["error"]["message"]' \
  'r["nodes"]["layered"]["error"]["kind"] == "tool_error"' \
  '"Permission denied" in r["nodes"]["layered"]["error"]["message"]'
expect_events "$W/ev-deg" \
  'sorted((e["node_id"], e["missing"]) for e in of(ev, "sandbox.degraded")) == [("layered", ["network namespace"]), ("relaxed", ["network namespace"])]' \
  'not of(ev, "node.started", "strict") or of(ev, "node.failed", "strict")'
# Everything refused: the relaxed tool still runs, and says what it lacks.
# As root the tool still runs as nobody, without the mount namespace that
# would let it into root's private $W: the copy is world-readable.
D2=$(mktemp -d /tmp/ice-sbx-deg.XXXXXX)
chmod 755 "$D2"
sbx_copy "$D2"
ICE_SANDBOX_REFUSE=all ice run "$D2/degraded.yaml" --no-store --input port=9 --events "$W/ev-deg2"
rm -rf "$D2"
expect_rc 1
expect_json 'r["output"]["relaxed"] == {"ran": True}' \
  '"user namespace" in r["nodes"]["strict"]["error"]["message"]'
expect_events "$W/ev-deg2" \
  '[e["missing"] for e in of(ev, "sandbox.degraded", "relaxed")] == [["user namespace", "pid namespace", "network namespace", "mount namespace", "ipc namespace", "uts namespace", "read-only file system"] + (["id-mapped mounts"] if '"$(id -u)"' == 0 else []) + ["seccomp filter"]]'
t_end

t_begin "sandbox: without a pid namespace, what a tool left behind still ends with it, setsid or not, and on a timeout"
# The seccomp filter keeps the tool's processes in its process group
# (docs/security.md): the pid namespace refused, then every namespace (as
# root the tool is nobody then: the copy is world-readable). Before, three
# sleeps outlived this run. coreutils' timeout, which signals a process
# group of its own, still works.
D3=$(mktemp -d /tmp/ice-sbx-reap.XXXXXX)
chmod 755 "$D3"
cat >"$D3/reap.yaml" <<'Y'
tools:
  left:
    command: [sh, -c, "setsid sleep \"$ICE_T_MARK\" & (setsid sh -c 'sleep \"$ICE_T_MARK\"' &) ; sleep \"$ICE_T_MARK\" & echo '{\"left\": 3}'"]
    sandbox: {strict: false}
  hang:
    command: [sh, -c, "setsid sleep \"$ICE_T_MARK\" & exec sleep \"$ICE_T_MARK\""]
    sandbox: {strict: false}
  timed:
    command: [sh, -c, "timeout 0.2 sleep \"$ICE_T_MARK\"; echo \"{\\\"rc\\\": $?}\""]
    sandbox: {strict: false}
nodes:
  - {id: left, type: tool, tool_name: left}
  - {id: hang, type: tool, tool_name: hang, timeout_seconds: 1}
  - {id: timed, type: tool, tool_name: timed}
Y
for refuse in pid user,pid,net,mount,ipc,uts,readonly,idmap; do
  ICE_T_MARK=$SBX_MARK ICE_SANDBOX_REFUSE=$refuse ice run "$D3/reap.yaml" --no-store
  expect_rc 1
  expect_json 'r["output"]["left"] == {"left": 3}' \
    'r["nodes"]["hang"]["error"]["kind"] == "timeout"' \
    'r["output"]["timed"] == {"rc": 124}'
  no_proc "sleep $SBX_MARK"
done
rm -rf "$D3"
t_end

t_begin "sandbox: ICE_CGROUP naming a cgroup v1 memory cgroup: memory and processes are limited by cgroups"
# docs/security.md, Cgroups. Only a memory cgroup's OOM kill is reported as
# "killed at its memory limit" (RLIMIT_DATA: "failed after using"). The
# engine's own memory cgroup stands for one an operator made for ice.
MEMCG=/sys/fs/cgroup/memory$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup | sed 's|^/$||')
if [ "$(id -u)" != 0 ] || [ -e /sys/fs/cgroup/cgroup.controllers ] || [ ! -w "$MEMCG/memory.limit_in_bytes" ]; then
  echo "# skipped: needs root on a cgroup v1 host (the v2 path: test_sandbox's test_cgroup_base)" >&2
else
  mkdir -p "$W/cg"
  cp -R "$SBX/tools" "$W/cg/"
  cat >"$W/cg/cg.yaml" <<'Y'
tools:
  membomb: {command: [python3, tools/membomb.py], sandbox: {memory_mb: 96}}
  forkbomb: {command: [sh, -c, "while :; do sleep \"$ICE_T_MARK\" & done"], sandbox: {max_processes: 20}}
  fine: {command: [sh, -c, "echo '{\"ok\": true}'"]}
nodes:
  - {id: membomb, type: tool, tool_name: membomb}
  - {id: forkbomb, type: tool, tool_name: forkbomb}
  - {id: fine, type: tool, tool_name: fine}
Y
  ICE_CGROUP=$MEMCG ICE_T_MARK=$SBX_MARK ice run "$W/cg/cg.yaml" --no-store
  expect_rc 1
  expect_json 'r["nodes"]["membomb"]["error"] == {"kind": "resource_limit", "message": "memory: the tool was killed at its memory limit of 96 MiB (memory_mb)"}' \
    'r["nodes"]["forkbomb"]["error"] == {"kind": "resource_limit", "message": "processes: the tool failed at its limit of 20 processes (max_processes)"}' \
    'r["output"]["fine"] == {"ok": True}'
  no_proc "sleep $SBX_MARK"
  left=$(ls "$MEMCG" /sys/fs/cgroup/pids 2>/dev/null | grep "^ice-" || true)
  [ -z "$left" ] || fail "cgroups left: $left"
  # Without ICE_CGROUP, RLIMIT_DATA (the default on a v1 host).
  ICE_T_MARK=$SBX_MARK ice run "$W/cg/cg.yaml" --no-store
  expect_rc 1
  expect_json 'r["nodes"]["membomb"]["error"]["message"].startswith("memory: the tool failed after using ")'
  no_proc "sleep $SBX_MARK"
fi
t_end

t_begin "sandbox: the fields are checked at validation, with positions"
wf sbx-bad.yaml <<'Y'
tools:
  t:
    command: [x]
    sandbox: {memory_mb: 0, network: "yes", filesystem: rw, writable: [1], strict: 1, cpu_seconds: -1, max_processes: 1.5, netwrok: true}
nodes: [{id: n, type: tool, tool_name: t}]
Y
ice validate "$W/sbx-bad.yaml"
expect_rc 2
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.memory_mb must be an integer >= 1" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.network must be true or false" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.filesystem must be \"read-only\" or \"full\"" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.writable [0] must be a non-empty path" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.strict must be true or false" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.cpu_seconds must be a number of seconds > 0" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox.max_processes must be an integer >= 1" 4
expect_diag "$W/sbx-bad.yaml" "tools.t.sandbox: unknown field 'netwrok' (did you mean 'network'?)" 4
t_end

t_begin "sandbox: a writable path that does not exist fails the node, naming it"
mkdir -p "$W/sbx-w"
wf sbx-w/w.yaml <<'Y'
tools:
  t: {command: [sh, -c, "echo '{}'"], sandbox: {writable: [missing-dir]}}
nodes: [{id: n, type: tool, tool_name: t}, {id: m, type: tool, tool_name: echo}]
Y
ice run "$W/sbx-w/w.yaml" --no-store
expect_rc 1
expect_json "r['nodes']['n']['error'] == {'kind': 'tool_error', 'message': \"sandbox: writable path '$W/sbx-w/missing-dir': No such file or directory\"}" \
  'r["nodes"]["m"]["status"] == "completed"'
t_end

t_begin "sandbox: filesystem: full lets a tool write where its user may; the default does not"
wf sbx-w/full.yaml <<'Y'
tools:
  full: {command: [sh, -c, "echo a > by-full.txt && echo '{}'"], sandbox: {filesystem: full}}
  ro: {command: [sh, -c, "echo a > by-ro.txt && echo '{}'"]}
nodes: [{id: full, type: tool, tool_name: full}, {id: ro, type: tool, tool_name: ro}]
Y
ice run "$W/sbx-w/full.yaml" --no-store
expect_rc 1
expect_json 'r["output"]["full"] == {}' \
  '"Read-only file system" in r["nodes"]["ro"]["error"]["message"]'
[ -e "$W/sbx-w/by-full.txt" ] || fail "filesystem: full could not write"
[ -e "$W/sbx-w/by-ro.txt" ] && fail "the default filesystem was writable"
t_end

t_begin "sandbox: a tool sees its own pid namespace, no network and no capabilities"
wf sbx-w/view.yaml <<'Y'
tools:
  v:
    command: [sh, -c, "echo \"$$ $(ls /proc | grep -c '^[0-9]') $(grep -c : /proc/net/dev) $(grep CapEff /proc/self/status | cut -f2) $(grep NoNewPrivs /proc/self/status | cut -f2) $(grep Seccomp: /proc/self/status | cut -f2)\" >&2; echo '{}'"]
nodes: [{id: v, type: tool, tool_name: v}]
Y
ice run "$W/sbx-w/view.yaml" --no-store --events "$W/ev-view"
expect_rc 0
# pid 2 (the namespace's init is 1); a handful of processes (init, sh and
# what it forks); one network interface (lo); no capability; no_new_privs;
# seccomp mode 2 (filter).
expect_events "$W/ev-view" \
  '[e["line"].split() for e in of(ev, "node.log", "v")][0][0] == "2"' \
  '2 <= int([e["line"].split() for e in of(ev, "node.log", "v")][0][1]) <= 5' \
  '[e["line"].split() for e in of(ev, "node.log", "v")][0][2:] == ["1", "0000000000000000", "1", "2"]'
t_end

t_begin "sandbox: a tool whose cwd is / starts there, with no rights over root's files"
cat >"$W/cwdroot.json" <<'J'
{"tools": {"r": {"command": ["sh", "-c", "if cat /etc/shadow >/dev/null 2>&1; then s=true; else s=false; fi; printf '{\"pwd\": \"%s\", \"shadow\": %s}' \"$(pwd)\" \"$s\""],
                 "cwd": "/"}},
 "nodes": [{"id": "r", "type": "tool", "tool_name": "r"}]}
J
ice run --no-store "$W/cwdroot.json"
expect_rc 0
expect_json 'r["output"]["r"] == {"pwd": "/", "shadow": False}'
t_end
