# `ice validate` (SPEC §4.1): diagnostics FILE:LINE:COL: error: MESSAGE,
# every problem reported, exit 0/2, nothing on stdout.

V=$FIX/validate

t_begin "validate: valid JSON and YAML files exit 0 with empty stdout and stderr"
ice validate "$V/valid.json" "$V/valid.yaml"
expect_rc 0
expect_out_empty
[ -s "$W/err" ] && fail "stderr: $(cat "$W/err")"
t_end

t_begin "validate: FILE is printed as given on the command line"
(cd "$V" && timeout 20 "$ICE" validate many.json >"$W/out" 2>"$W/err")
RC=$?
expect_rc 2
expect_diag "many.json" "duplicate id 'a'" 5
t_end

t_begin "validate: every problem of one file is reported, one per line"
ice validate "$V/many.json"
expect_rc 2
expect_out_empty
expect_all_diags "$V/many.json"
expect_diag "$V/many.json" "duplicate id 'a'" 5
expect_diag "$V/many.json" "unknown dependency 'zz'" 6
expect_diag "$V/many.json" "unknown node type 'frob'" 6
expect_diag "$V/many.json" "unknown field 'extra'"
expect_diag "$V/many.json" "unknown field 'colour'" 9
expect_diag "$V/many.json" "cycle: a -> b -> a"
expect_diag "$V/many.json" "9.9"
expect_diag "$V/many.json" "unterminated '{{'" 8
n=$(wc -l <"$W/err")
[ "$n" -ge 9 ] || fail "expected >= 9 diagnostics, got $n"
t_end

t_begin "validate: expression syntax error names the node and the column"
ice validate "$V/many.json"
expect_diag "$V/many.json" "node 'd': run_if: column 4:" 7
t_end

t_begin "validate: a cycle is reported with its full path"
ice validate "$V/cycle3.yaml"
expect_rc 2
expect_diag "$V/cycle3.yaml" "cycle: x -> y -> z -> x"
t_end

t_begin "validate: missing 'nodes' and an empty 'nodes' are errors"
ice validate "$V/nonodes.json"
expect_rc 2
expect_diag "$V/nonodes.json" "nodes" 1
ice validate "$V/zeronodes.json"
expect_rc 2
expect_diag "$V/zeronodes.json" "nodes" 1
t_end

t_begin "validate: wrong field types and out-of-range values"
ice validate "$V/types.json"
expect_rc 2
expect_all_diags "$V/types.json"
expect_diag "$V/types.json" "tool_name" 2
expect_diag "$V/types.json" "dependencies" 2
expect_diag "$V/types.json" "timeout_seconds" 3
expect_diag "$V/types.json" "retries" 3
expect_diag "$V/types.json" "max_parallel" 5
expect_diag "$V/types.json" "failure_policy 'sometimes'" 5
t_end

t_begin "validate: self-dependency, unknown tool, missing tool_name"
ice validate "$V/selfdep.json"
expect_rc 2
expect_diag "$V/selfdep.json" "may not depend on itself" 2
expect_diag "$V/selfdep.json" "unknown tool 'nosuchtool'" 2
expect_diag "$V/selfdep.json" "missing required field 'tool_name'" 3
t_end

t_begin "validate: input mapping from a non-dependency is an error"
ice validate "$V/mapping.json"
expect_rc 2
expect_diag "$V/mapping.json" "'b' is not a dependency" 5
t_end

t_begin "validate: unknown schema type word is an error"
ice validate "$V/schema.json"
expect_rc 2
expect_diag "$V/schema.json" "integr" 1
t_end

t_begin "validate: several files at once, one bad -> exit 2, only it reported"
ice validate "$V/valid.json" "$V/nonodes.json" "$V/valid.yaml"
expect_rc 2
expect_out_empty
expect_diag "$V/nonodes.json" "nodes"
grep -q "valid\.\(json\|yaml\)" "$W/err" && fail "a valid file was reported: $(cat "$W/err")"
t_end

t_begin "validate: a missing file is an error naming it"
ice validate "$W/no-such-file.json"
expect_rc 2
expect_out_empty
expect_err_has "$W/no-such-file.json"
t_end

t_begin "validate: malformed JSON reports the line and column"
ice validate "$V/malformed.json"
expect_rc 2
expect_diag "$V/malformed.json" "JSON" 2
t_end

t_begin "validate: malformed YAML reports the line and column"
ice validate "$V/malformed.yaml"
expect_rc 2
expect_diag "$V/malformed.yaml" "YAML"
t_end

t_begin "validate: huge numbers (1e400, 99999999999999999999999) are clear errors"
ice validate "$V/huge-float.json"
expect_rc 2
expect_diag "$V/huge-float.json" "1e400" 2
ice validate "$V/huge-int.json"
expect_rc 2
expect_diag "$V/huge-int.json" "99999999999999999999999" 2
t_end

t_begin "validate: 10,000 nested arrays (JSON and YAML) give an error, no crash"
python3 -c "print('{\"nodes\": ' + '[' * 10000 + ']' * 10000 + '}')" >"$W/deep.json"
python3 -c "print('nodes: ' + '[' * 10000 + ']' * 10000)" >"$W/deep.yaml"
for f in "$W/deep.json" "$W/deep.yaml"; do
  ice validate "$f"
  expect_rc 2
  expect_diag "$f" "nesting"
done
t_end

t_begin "validate: empty file, binary garbage, top-level array are errors"
for f in empty.json garbage.json toparray.json; do
  ice validate "$V/$f"
  expect_rc 2
  expect_out_empty
  expect_all_diags "$V/$f"
  [ -s "$W/err" ] || fail "$f: no diagnostic"
done
t_end

t_begin "validate: run of an invalid workflow exits 2, prints diagnostics, runs nothing"
ice run "$V/many.json"
expect_rc 2
expect_out_empty
expect_diag "$V/many.json" "duplicate id 'a'"
t_end
