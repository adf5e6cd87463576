# WASM tools and wasm code nodes (SPEC §5.1, §7.6) through `ice`, on the
# .wat fixtures of tests/wasm/ (and one .wasm built from them by wat2wasm).

WD=$W/wasm
mkdir -p "$WD"
cp "$ROOT"/tests/wasm/*.wat "$WD/"
wat2wasm "$WD/echo.wat" -o "$WD/echo.wasm" || fail "wat2wasm failed"
cat >"$WD/forbidden.wat" <<'EOF'
(module
  (import "env" "open" (func (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "ice_alloc") (param i32) (result i32) (i32.const 0))
  (func (export "run") (param i32 i32) (result i64) (i64.const 0)))
EOF
cat >"$WD/w.yaml" <<'EOF'
tools:
  wecho: {wasm: echo.wasm}
  wtext: {wasm: echo.wat}
  wlog: {wasm: log.wat}
  grow: {wasm: grow.wat}
  spin: {wasm: misc.wat, export: spin, fuel: 1000000}
  spinlong: {wasm: misc.wat, export: spin, fuel: 100000000000}
  div0: {wasm: misc.wat, export: div0}
  unreachable: {wasm: misc.wat, export: unreachable}
  notjson: {wasm: misc.wat, export: not_json}
  oob: {wasm: misc.wat, export: oob_output}
max_parallel: 10
nodes:
  - {id: echo, type: tool, tool_name: wecho, tool_args: {x: 1, s: "héllo"}}
  - {id: text, type: tool, tool_name: wtext, tool_args: {n: [1, 2]}}
  - {id: log, type: tool, tool_name: wlog, tool_args: {y: 2}}
  - {id: grow, type: tool, tool_name: grow}
  - {id: fuel, type: tool, tool_name: spin}
  - {id: div0, type: tool, tool_name: div0}
  - {id: unreachable, type: tool, tool_name: unreachable}
  - {id: notjson, type: tool, tool_name: notjson}
  - {id: oob, type: tool, tool_name: oob}
  - {id: long, type: tool, tool_name: spinlong, timeout_seconds: 1}
  - {id: nap, type: tool, tool_name: sleep, tool_args: {seconds: 0.2}}
  - {id: code, type: code, language: wasm, module: echo.wat, dependencies: [echo]}
EOF

t_begin "wasm: the JSON ABI from .wasm and .wat, env.ice_log, memory cap, fuel, traps"
t0=$(date +%s%N)
ice run "$WD/w.yaml" --no-store --events "$WD/ev"
ms=$((($(date +%s%N) - t0) / 1000000))
expect_rc 1
expect_json 'r["output"]["echo"] == {"x": 1, "s": "héllo"} and r["output"]["text"] == {"n": [1, 2]}' \
  'r["output"]["grow"] == {"a": 1, "b": -1}' \
  'r["nodes"]["fuel"]["error"]["kind"] == "resource_limit" and "fuel" in r["nodes"]["fuel"]["error"]["message"]' \
  'r["nodes"]["div0"]["error"] == {"kind": "tool_error", "message": "integer divide by zero"}' \
  'r["nodes"]["unreachable"]["error"]["kind"] == "tool_error" and "unreachable" in r["nodes"]["unreachable"]["error"]["message"]' \
  'r["nodes"]["notjson"]["error"]["kind"] == "tool_error" and "not JSON" in r["nodes"]["notjson"]["error"]["message"]' \
  'r["nodes"]["oob"]["error"]["kind"] == "tool_error"' \
  'r["nodes"]["long"]["error"]["kind"] == "timeout"' \
  'r["output"]["code"]["echo"] == {"x": 1, "s": "héllo"}'
expect_events "$WD/ev" \
  '[e["line"] for e in of(ev, "node.log", "log")] == ["hello from wasm", "{\"y\":2}"]' \
  '[e["stream"] for e in of(ev, "node.log", "log")] == ["wasm", "wasm"]'
t_end

t_begin "wasm: a spinning module runs off the loop: a sleep beside it is on time"
expect_json 'abs(r["nodes"]["nap"]["duration_ms"] - 200) < 100'
[ "$ms" -lt 4000 ] || fail "took $ms ms: the timeout did not stop the module"
t_end

t_begin "wasm: forbidden imports, missing files and bad fields are validation errors"
cat >"$WD/bad.yaml" <<'EOF'
tools:
  evil: {wasm: forbidden.wat}
  gone: {wasm: nosuch.wasm}
  noexport: {wasm: echo.wat, export: nope}
  both: {wasm: echo.wat, command: [true]}
  fuelbad: {wasm: echo.wat, fuel: 0, memory_pages: 70000}
nodes:
  - {id: a, type: tool, tool_name: evil}
  - {id: b, type: tool, tool_name: gone}
  - {id: c, type: tool, tool_name: noexport}
  - {id: d, type: code, language: wasm}
EOF
ice validate "$WD/bad.yaml"
expect_rc 2
expect_diag "$WD/bad.yaml" "import 'env.open' is not allowed (only env.ice_log)" 2
expect_diag "$WD/bad.yaml" "nosuch.wasm" 3
expect_diag "$WD/bad.yaml" "nope" 4
expect_diag "$WD/bad.yaml" "set either command or wasm, not both" 5
expect_diag "$WD/bad.yaml" "fuel must be an integer >= 1" 6
expect_diag "$WD/bad.yaml" "memory_pages must be an integer from 1 to 65536" 6
expect_diag "$WD/bad.yaml" "missing required field 'module'" 11
t_end

t_begin "examples: wasm-tool.yaml (a .wat tool and a wasm code node)"
(cd "$ROOT" && timeout 20 "$ICE" run examples/wasm-tool.yaml --input "text=hello wasm" --no-store --events "$WD/ev-ex" >"$W/out" 2>"$W/err")
RC=$?
expect_rc 0
expect_json 'r["output"]["loud"] == {"TEXT": "HELLO WASM"}' \
  'r["output"]["as_code"]["LOUD"] == {"TEXT": "HELLO WASM"}'
expect_events "$WD/ev-ex" '[e["line"] for e in of(ev, "node.log", "loud")] == ["shouting"]'
t_end

t_begin "wasm: eight modules running at once; a sleep 0.1 tool beside them finishes on time"
python3 -I -S -c 'import json
nodes = [{"id": "w%d" % i, "type": "tool", "tool_name": "spin"} for i in range(8)]
nodes.append({"id": "nap", "type": "tool", "tool_name": "sleep", "tool_args": {"seconds": 0.1}})
print(json.dumps({"max_parallel": 9, "tools": {"spin": {"wasm": "misc.wat", "export": "spin", "fuel": 60000000}}, "nodes": nodes}))' >"$WD/eight.json"
ice run "$WD/eight.json" --no-store --events "$WD/ev8"
expect_rc 1
expect_json 'all(r["nodes"]["w%d" % i]["error"]["kind"] == "resource_limit" for i in range(8))' \
  'r["nodes"]["nap"]["status"] == "completed"' \
  'r["nodes"]["nap"]["duration_ms"] < min(500, min(r["nodes"]["w%d" % i]["duration_ms"] for i in range(8)) / 4)'
expect_events "$WD/ev8" 'len(of(ev, "node.started")) == 9' \
  'max(e["seq"] for e in of(ev, "node.started")) < min(e["seq"] for e in of(ev, "node.failed"))'
t_end

t_begin "wasm: output over 1 MiB is resource_limit; an empty output is not JSON"
cat >"$WD/big.yaml" <<'EOF'
tools:
  wecho: {wasm: echo.wat}
  empty: {wasm: misc.wat, export: empty_output}
nodes:
  - {id: big, type: tool, tool_name: wecho, tool_args: {s: "{{ s }}"}}
  - {id: empty, type: tool, tool_name: empty}
EOF
python3 -I -S -c 'import json; print(json.dumps({"s": "x" * 1500000}))' >"$WD/big.json"
ice run "$WD/big.yaml" --no-store --inputs "@$WD/big.json"
expect_rc 1
expect_json 'r["nodes"]["big"]["error"]["kind"] == "resource_limit" and "output" in r["nodes"]["big"]["error"]["message"]' \
  'r["nodes"]["empty"]["error"]["kind"] == "tool_error"'
t_end

t_begin "wasm: env.ice_log lines of any size; over 1 MiB of log in a call is cut"
cat >"$WD/biglog.wat" <<'EOF'
(module
  (import "env" "ice_log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (drop (memory.grow (i32.add (i32.shr_u (local.get $size) (i32.const 16))
                                (i32.const 1))))
    (local.get $p))
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (call $log (local.get $ptr) (local.get $len))
    (i64.const 0x0000001000000002))
  (data (i32.const 16) "{}"))
EOF
cat >"$WD/logs.yaml" <<'EOF'
tools:
  wlog: {wasm: biglog.wat}
nodes:
  - {id: mid, type: tool, tool_name: wlog, tool_args: {s: "{{ mid }}"}}
  - {id: huge, type: tool, tool_name: wlog, tool_args: {s: "{{ huge }}"}}
EOF
python3 -I -S -c 'import json; print(json.dumps({"mid": "m" * 10000, "huge": "h" * 1200000}))' >"$WD/logs.json"
ice run "$WD/logs.yaml" --no-store --inputs "@$WD/logs.json" --events "$WD/ev-logs"
expect_rc 0
expect_events "$WD/ev-logs" 'any(len(e["line"]) > 10000 for e in of(ev, "node.log", "mid"))' \
  'any("log cut" in e["line"] for e in of(ev, "node.log", "huge"))'
t_end
