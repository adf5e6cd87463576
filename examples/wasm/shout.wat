;; A WASM tool (SPEC §5.1) written by hand: it upper-cases every ASCII
;; letter of its args' JSON text, in place, and returns that text, so
;; {"text": "hi"} comes back as {"TEXT": "HI"}. It logs one line through
;; env.ice_log, the only import a module may have.
(module
  (import "env" "ice_log" (func $log (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "shouting")
  (global $next (mut i32) (i32.const 1024))

  ;; A bump allocator: the engine asks for room for the args.
  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (if (i32.gt_u (global.get $next) (i32.mul (memory.size) (i32.const 65536)))
      (then (drop (memory.grow (i32.add (i32.shr_u (local.get $size)
                                                   (i32.const 16))
                                        (i32.const 1))))))
    (local.get $p))

  ;; (ptr, len) -> ptr << 32 | len of the output.
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $i i32) (local $c i32)
    (call $log (i32.const 0) (i32.const 8))
    (block $done
      (loop $each
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $c (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (if (i32.and (i32.ge_u (local.get $c) (i32.const 97))
                     (i32.le_u (local.get $c) (i32.const 122)))
          (then (i32.store8 (i32.add (local.get $ptr) (local.get $i))
                            (i32.sub (local.get $c) (i32.const 32)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $each)))
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
