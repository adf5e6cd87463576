;; One module, many ways to fail: each export is a test case of
;; test_wasm.c (loaded with that export as the tool's).
(module
  (import "env" "ice_log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "not json {")
  (global $next (mut i32) (i32.const 1024))
  (global $counter (mut i32) (i32.const 0))

  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))

  ;; A bad allocator: a pointer at the very end of memory.
  (func (export "bad_alloc") (param $size i32) (result i32)
    (i32.const 65535))

  (func (export "unreachable") (param i32 i32) (result i64)
    unreachable)

  (func (export "div0") (param $ptr i32) (param $len i32) (result i64)
    (i64.extend_i32_s (i32.div_s (local.get $len) (i32.const 0))))

  (func (export "oob_load") (param i32 i32) (result i64)
    (i64.load (i32.const 65530)))

  (func (export "oob_output") (param i32 i32) (result i64)
    ;; offset 65000, length 1000: past the one page
    (i64.or (i64.shl (i64.const 65000) (i64.const 32)) (i64.const 1000)))

  (func (export "huge_output") (param i32 i32) (result i64)
    ;; offset 0xffffffff, length 0xffffffff: the unsigned shift matters
    (i64.const -1))

  (func (export "not_json") (param i32 i32) (result i64)
    (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 10)))

  (func (export "empty_output") (param i32 i32) (result i64)
    (i64.const 0))

  (func (export "bad_log") (param i32 i32) (result i64)
    (call $log (i32.const 65000) (i32.const 1000))
    (i64.const 0))

  (func (export "spin") (param i32 i32) (result i64)
    (loop $forever
      (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
      (br $forever))
    (i64.const 0))

  ;; 1000 iterations of a 7-instruction loop, then an empty output.
  (func (export "count") (param i32 i32) (result i64)
    (local $i i32)
    (loop $again
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 1000))))
    (i64.const 0))

  (func $recurse (export "recurse") (param i32 i32) (result i64)
    (call $recurse (local.get 0) (local.get 1)))
)
