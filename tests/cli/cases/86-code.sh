# code nodes (SPEC §7.6): Python and JavaScript run as process tools of the
# machine's python3 and node, with the context bound to `ctx` and `output`
# read back as JSON.

mkdir -p "$W/code"
cat >"$W/code/code.yaml" <<'EOF'
nodes:
  - id: py
    type: code
    language: python
    imports: [json]
    code: |
      print("hello from python")
      output = {"sum": ctx["a"] + ctx["b"], "doubled": [i * 2 for i in range(3)]}
  - id: js
    type: code
    language: javascript
    dependencies: [py]
    code: |
      console.log("hello from js");
      output = {prod: ctx.a * ctx.b, from_py: ctx.py.sum};
  - id: scalar
    type: code
    language: python
    code: "output = 42"
  - id: raises
    type: code
    language: python
    code: "output = 1 / 0"
  - id: silent
    type: code
    language: javascript
    code: "let x = 1;"
  - id: jsthrows
    type: code
    language: javascript
    code: "throw new Error('boom from js');"
  - id: slow
    type: code
    language: python
    timeout_seconds: 0.5
    code: |
      import time
      time.sleep(30)
      output = 1
EOF

t_begin "code: python and javascript get ctx, set output, and print to node.log"
ice run "$W/code/code.yaml" --input a=2 --input b=5 --no-store --events "$W/code/ev"
expect_rc 1
expect_json 'r["output"]["py"] == {"sum": 7, "doubled": [0, 2, 4]}' \
  'r["output"]["js"] == {"prod": 10, "from_py": 7}' \
  'r["output"]["scalar"] == {"result": 42}'
expect_events "$W/code/ev" \
  '[e["line"] for e in of(ev, "node.log", "py")] == ["hello from python"]' \
  '[e["line"] for e in of(ev, "node.log", "js")] == ["hello from js"]'
t_end

t_begin "code: exceptions, a missing output and a timeout fail the node clearly"
expect_json 'r["nodes"]["raises"]["error"]["kind"] == "tool_error" and "ZeroDivisionError: division by zero" in r["nodes"]["raises"]["error"]["message"]' \
  '"<code node raises>" in r["nodes"]["raises"]["error"]["message"]' \
  '"did not set `output`" in r["nodes"]["silent"]["error"]["message"]' \
  '"boom from js" in r["nodes"]["jsthrows"]["error"]["message"]' \
  'r["nodes"]["slow"]["error"]["kind"] == "timeout"'
t_end

t_begin "code: bad language and missing code are validation errors"
cat >"$W/code/bad.yaml" <<'EOF'
nodes:
  - {id: a, type: code, language: ruby, code: "x"}
  - {id: b, type: code, language: python}
EOF
ice validate "$W/code/bad.yaml"
expect_rc 2
expect_diag "$W/code/bad.yaml" "language 'ruby' is not one of python, javascript, wasm" 2
expect_diag "$W/code/bad.yaml" "missing required field 'code'" 3
t_end

t_begin "examples: code-node.yaml runs python then javascript"
(cd "$ROOT" && timeout 20 "$ICE" run examples/code-node.yaml --input 'words=["b", "a", "c", "a"]' --no-store --output-only >"$W/out" 2>"$W/err")
RC=$?
expect_rc 0
expect_json 'r == {"count": {"counts": {"a": 2, "b": 1, "c": 1}}, "top": {"top": "a", "times": 2}}'
t_end
