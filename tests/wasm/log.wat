;; Logs a fixed line, then its args, through env.ice_log, and returns
;; {"logged":2}.
(module
  (import "env" "ice_log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello from wasm")
  (data (i32.const 64) "{\"logged\":2}")
  (global $next (mut i32) (i32.const 1024))

  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))

  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 16) (i32.const 15))
    (call $log (local.get $ptr) (local.get $len))
    (i64.or (i64.shl (i64.const 64) (i64.const 32)) (i64.const 12))))
