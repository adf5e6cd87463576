# Loading and validation found wanting by the hostile review (issue 6,
# items 9-11): CRLF line numbers, every problem reported after a duplicate
# key or a huge integer, iceOS model_dump() nodes with warnings.

HL=$FIX/hostile-loader

t_begin "hostile-loader: a CRLF JSON file reports the right line"
ice validate "$HL/crlf.json"
expect_rc 2
expect_diag "$HL/crlf.json" "node 'b': unknown node type 'frob'" 4
t_end

t_begin "hostile-loader: a duplicate key and a huge integer hide no other problem"
ice validate "$HL/soft.yaml"
expect_rc 2
expect_diag "$HL/soft.yaml" "duplicate key 'x'" 5
expect_diag "$HL/soft.yaml" "integer 99999999999999999999 is out of range" 5
expect_diag "$HL/soft.yaml" "unknown tool 'nosuch'" 4
grep -qF "soft.yaml:6:6: warning: node 'if': id 'if' is a keyword of expressions" "$W/err" ||
  fail "no keyword warning; stderr: $(cat "$W/err")"
expect_diag "$HL/soft.yaml" "unknown node type 'frob'" 6
t_end

t_begin "hostile-loader: an iceOS model_dump() node validates, with one warning"
ice validate "$HL/iceos.json"
expect_rc 0
expect_out_empty
grep -qE "^$(re_escape "$HL/iceos.json"):6:5: warning: node 't': 'output_mappings' is accepted" "$W/err" ||
  fail "no warning at output_mappings; stderr: $(cat "$W/err")"
[ "$(wc -l <"$W/err")" -eq 1 ] || fail "expected exactly one line on stderr: $(cat "$W/err")"
t_end

t_begin "hostile-loader: an iceOS model_dump() node runs"
ice run "$HL/iceos.json"
expect_rc 0
expect_json 'r["nodes"]["t"]["status"] == "completed"'
t_end
