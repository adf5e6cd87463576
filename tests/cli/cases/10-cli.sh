# The command line itself (SPEC §11): version, help, usage errors.

t_begin "cli: --version prints 'ice X.Y.Z' and exits 0"
ice --version
expect_rc 0
grep -qE '^ice [0-9]+\.[0-9]+\.[0-9]+' "$W/out" || fail "stdout: $(cat "$W/out")"
t_end

t_begin "cli: help lists the commands on stdout"
ice help
expect_rc 0
for c in "ice run" "ice validate" "ice --version"; do
  grep -qF "$c" "$W/out" || fail "help lacks '$c'"
done
t_end

t_begin "cli: help run documents the run options"
ice help run
expect_rc 0
for o in --input --inputs --max-parallel --events --output-only; do
  grep -qF -- "$o" "$W/out" || fail "help run lacks '$o'"
done
t_end

t_begin "cli: no arguments is bad usage (exit 2, usage on stderr)"
ice
expect_rc 2
expect_out_empty
expect_err_has "usage"
t_end

t_begin "cli: unknown command exits 2 naming it"
ice frobnicate
expect_rc 2
expect_out_empty
expect_err_has "unknown command 'frobnicate'"
t_end

t_begin "cli: unknown option of run exits 2 naming it"
ice run "$ROOT/examples/hello.json" --frob
expect_rc 2
expect_out_empty
expect_err_has "unknown option '--frob'"
t_end

t_begin "cli: help for an unknown topic exits 2"
ice help nosuchcommand
expect_rc 2
expect_err_has "nosuchcommand"
t_end

t_begin "cli: run without FILE, validate without FILE exit 2"
ice run
expect_rc 2
expect_out_empty
ice validate
expect_rc 2
expect_out_empty
t_end

t_begin "cli: bad option values exit 2 before running"
for args in "--max-parallel 0" "--max-parallel x" "--input novalue" \
            "--inputs [1,2]" "--inputs {bad" "--inputs @$W/missing.json"; do
  # shellcheck disable=SC2086 # word splitting of $args is intended
  ice run "$ROOT/examples/hello.json" $args
  [ "$RC" = 2 ] || fail "ice run $args: exit $RC, expected 2"
  [ -s "$W/out" ] && fail "ice run $args printed a result"
  [ -s "$W/err" ] || fail "ice run $args: no message on stderr"
done
t_end
