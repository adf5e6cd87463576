;; Grows memory by 255 pages, then by 1 more, and reports what each
;; memory.grow returned as {"a":A,"b":B}: from 1 page under a cap of 256
;; that is {"a":1,"b":-1}.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "{\"a\":")
  (data (i32.const 8) ",\"b\":")
  (global $next (mut i32) (i32.const 1024))

  (func (export "ice_alloc") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get $size)))
    (local.get $p))

  ;; Writes v in decimal at dst; returns the bytes written.
  (func $itoa (param $v i32) (param $dst i32) (result i32)
    (local $n i32) (local $u i32) (local $i i32) (local $t i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then
        (i32.store8 (local.get $dst) (i32.const 45))
        (local.set $dst (i32.add (local.get $dst) (i32.const 1)))
        (local.set $n (i32.const 1))
        (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    ;; digits backwards into a scratch area at 512, then copied forwards
    (local.set $u (local.get $v))
    (loop $digits
      (i32.store8 (i32.add (i32.const 512) (local.get $i))
                  (i32.add (i32.const 48) (i32.rem_u (local.get $u) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (local.set $u (i32.div_u (local.get $u) (i32.const 10)))
      (br_if $digits (local.get $u)))
    (local.set $t (i32.const 0))
    (loop $copy
      (i32.store8 (i32.add (local.get $dst) (local.get $t))
                  (i32.load8_u (i32.add (i32.const 511)
                                        (i32.sub (local.get $i) (local.get $t)))))
      (local.set $t (i32.add (local.get $t) (i32.const 1)))
      (br_if $copy (i32.lt_u (local.get $t) (local.get $i))))
    (i32.add (local.get $n) (local.get $i)))

  (func (export "run") (param $ptr i32) (param $len i32) (result i64)
    (local $a i32) (local $b i32) (local $w i32)
    (local.set $a (memory.grow (i32.const 255)))
    (local.set $b (memory.grow (i32.const 1)))
    ;; {"a": at 256, then A, ,"b": , B and }
    (memory.copy (i32.const 256) (i32.const 0) (i32.const 5))
    (local.set $w (i32.const 261))
    (local.set $w (i32.add (local.get $w) (call $itoa (local.get $a) (local.get $w))))
    (memory.copy (local.get $w) (i32.const 8) (i32.const 5))
    (local.set $w (i32.add (local.get $w) (i32.const 5)))
    (local.set $w (i32.add (local.get $w) (call $itoa (local.get $b) (local.get $w))))
    (i32.store8 (local.get $w) (i32.const 125))
    (local.set $w (i32.add (local.get $w) (i32.const 1)))
    (i64.or (i64.shl (i64.const 256) (i64.const 32))
            (i64.extend_i32_u (i32.sub (local.get $w) (i32.const 256))))))
