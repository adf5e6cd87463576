;; The smallest tool: returns its args unchanged. ice_alloc is a bump
;; allocator that grows memory when it must (memory.grow returns -1 past
;; the cap, and ice then reports the pointer as outside memory).
(module
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))

  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (if (i32.gt_u (global.get $next)
                  (i32.mul (memory.size) (i32.const 65536)))
      (then
        (drop (memory.grow
          (i32.add (i32.shr_u (i32.sub (global.get $next)
                                       (i32.mul (memory.size)
                                                (i32.const 65536)))
                              (i32.const 16))
                   (i32.const 1))))))
    (local.get $p))

  ;; (ptr, len) -> ptr << 32 | len: the output is the input.
  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len)))))
