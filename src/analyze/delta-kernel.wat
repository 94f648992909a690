;; The ΔW kernel of delta-kernel.ts. delta-kernel-bytes.ts holds the bytes this assembles to
;; (`npm run wasm` writes them anew; test/wasm-modules.test.ts assembles this with wabt
;; and requires the same bytes).
;;
;; Both functions take (base, tuned, out, n): byte addresses in the imported memory and a count
;; of values. They write ΔW = tuned − base as f32 to out[0, n), and at bytes 0 and 8 of the
;; memory ‖base‖² and ‖ΔW‖² as f64, each the sum of exact f64 squares of f32 values, as the plain
;; TypeScript loop sums them. A vector loop takes 8 (bf16) or 4 (f32) values a step and keeps
;; four f64x2 accumulators (low and high lanes of each sum); a scalar loop does the last few.
;; Memory accesses are unaligned (align=1): the regions are 16-byte aligned, but bf16 tuned
;; values start at out + 2n.
(module
  (type $kernel (func (param i32 i32 i32 i32)))
  (import "k" "memory" (memory 1))

  ;; delta_bf16: base and tuned hold raw bf16; tuned may sit in the upper half of out (at
  ;; out + 2n): each step loads both sides' 16 bytes before storing 32 bytes of ΔW, and the
  ;; store never reaches a bf16 value not read yet.
  (func $delta_bf16 (type $kernel) (param $base i32) (param $tuned i32) (param $out i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local $xb v128) (local $xt v128) (local $raw_b v128) (local $raw_t v128)
    (local $acc_b_lo v128) (local $acc_b_hi v128) (local $acc_d_lo v128) (local $acc_d_hi v128) (local $sq v128)
    (local $sum_b f64) (local $sum_d f64)
    (local $fb f32) (local $ft f32)
    ;; The vector loop ends at n rounded down to a multiple of 8.
    (local.set $end (i32.and (local.get $n) (i32.const -8)))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $raw_b (v128.load align=1 (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 1)))))
        (local.set $raw_t (v128.load align=1 (i32.add (local.get $tuned) (i32.shl (local.get $i) (i32.const 1)))))
        ;; Values 0–3: widen bf16 to f32 (the 16 bits become the high half), subtract, store, sum.
        (local.set $xb (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $raw_b)) (i32.const 16)))
        (local.set $xt (i32x4.shl (i32x4.extend_low_i16x8_u (local.get $raw_t)) (i32.const 16)))
        (local.set $xt (f32x4.sub (local.get $xt) (local.get $xb)))
        (v128.store align=1 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $xt))
        (local.set $acc_b_lo
          (f64x2.add (local.get $acc_b_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xb))) (local.get $sq))))
        (local.set $acc_b_hi
          (f64x2.add (local.get $acc_b_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xb) (local.get $xb))))
              (local.get $sq))))
        (local.set $acc_d_lo
          (f64x2.add (local.get $acc_d_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xt))) (local.get $sq))))
        (local.set $acc_d_hi
          (f64x2.add (local.get $acc_d_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xt) (local.get $xt))))
              (local.get $sq))))
        ;; Values 4–7: the same from the high halves, stored 16 bytes further.
        (local.set $xb (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $raw_b)) (i32.const 16)))
        (local.set $xt (i32x4.shl (i32x4.extend_high_i16x8_u (local.get $raw_t)) (i32.const 16)))
        (local.set $xt (f32x4.sub (local.get $xt) (local.get $xb)))
        (v128.store offset=16 align=1 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $xt))
        (local.set $acc_b_lo
          (f64x2.add (local.get $acc_b_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xb))) (local.get $sq))))
        (local.set $acc_b_hi
          (f64x2.add (local.get $acc_b_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xb) (local.get $xb))))
              (local.get $sq))))
        (local.set $acc_d_lo
          (f64x2.add (local.get $acc_d_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xt))) (local.get $sq))))
        (local.set $acc_d_hi
          (f64x2.add (local.get $acc_d_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xt) (local.get $xt))))
              (local.get $sq))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $step)))
    ;; The tail, one value at a time.
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $fb
          (f32.reinterpret_i32
            (i32.shl (i32.load16_u (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16))))
        (local.set $ft
          (f32.sub
            (f32.reinterpret_i32
              (i32.shl (i32.load16_u (i32.add (local.get $tuned) (i32.shl (local.get $i) (i32.const 1)))) (i32.const 16)))
            (local.get $fb)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $ft))
        (local.set $sum_b
          (f64.add (local.get $sum_b) (f64.mul (f64.promote_f32 (local.get $fb)) (f64.promote_f32 (local.get $fb)))))
        (local.set $sum_d
          (f64.add (local.get $sum_d) (f64.mul (f64.promote_f32 (local.get $ft)) (f64.promote_f32 (local.get $ft)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $step)))
    ;; ‖base‖² at byte 0 and ‖ΔW‖² at byte 8: the four lanes, then the tail's sum.
    (f64.store (i32.const 0)
      (f64.add
        (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $acc_b_lo)) (f64x2.extract_lane 1 (local.get $acc_b_lo)))
          (f64.add (f64x2.extract_lane 0 (local.get $acc_b_hi)) (f64x2.extract_lane 1 (local.get $acc_b_hi))))
        (local.get $sum_b)))
    (f64.store (i32.const 8)
      (f64.add
        (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $acc_d_lo)) (f64x2.extract_lane 1 (local.get $acc_d_lo)))
          (f64.add (f64x2.extract_lane 0 (local.get $acc_d_hi)) (f64x2.extract_lane 1 (local.get $acc_d_hi))))
        (local.get $sum_d))))

  ;; delta_f32: base and tuned hold f32; out may equal tuned (each step reads its lanes before
  ;; it writes them). The locals are delta_bf16's, so one local declaration serves both.
  (func $delta_f32 (type $kernel) (param $base i32) (param $tuned i32) (param $out i32) (param $n i32)
    (local $i i32) (local $end i32)
    (local $xb v128) (local $xt v128) (local $raw_b v128) (local $raw_t v128)
    (local $acc_b_lo v128) (local $acc_b_hi v128) (local $acc_d_lo v128) (local $acc_d_hi v128) (local $sq v128)
    (local $sum_b f64) (local $sum_d f64)
    (local $fb f32) (local $ft f32)
    (local.set $end (i32.and (local.get $n) (i32.const -4)))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $xb (v128.load align=1 (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $xt (v128.load align=1 (i32.add (local.get $tuned) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $xt (f32x4.sub (local.get $xt) (local.get $xb)))
        (v128.store align=1 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $xt))
        (local.set $acc_b_lo
          (f64x2.add (local.get $acc_b_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xb))) (local.get $sq))))
        (local.set $acc_b_hi
          (f64x2.add (local.get $acc_b_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xb) (local.get $xb))))
              (local.get $sq))))
        (local.set $acc_d_lo
          (f64x2.add (local.get $acc_d_lo)
            (f64x2.mul (local.tee $sq (f64x2.promote_low_f32x4 (local.get $xt))) (local.get $sq))))
        (local.set $acc_d_hi
          (f64x2.add (local.get $acc_d_hi)
            (f64x2.mul
              (local.tee $sq
                (f64x2.promote_low_f32x4
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xt) (local.get $xt))))
              (local.get $sq))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $step)))
    (block $done
      (loop $step
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $fb (f32.load (i32.add (local.get $base) (i32.shl (local.get $i) (i32.const 2)))))
        (local.set $ft
          (f32.sub (f32.load (i32.add (local.get $tuned) (i32.shl (local.get $i) (i32.const 2)))) (local.get $fb)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $ft))
        (local.set $sum_b
          (f64.add (local.get $sum_b) (f64.mul (f64.promote_f32 (local.get $fb)) (f64.promote_f32 (local.get $fb)))))
        (local.set $sum_d
          (f64.add (local.get $sum_d) (f64.mul (f64.promote_f32 (local.get $ft)) (f64.promote_f32 (local.get $ft)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $step)))
    (f64.store (i32.const 0)
      (f64.add
        (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $acc_b_lo)) (f64x2.extract_lane 1 (local.get $acc_b_lo)))
          (f64.add (f64x2.extract_lane 0 (local.get $acc_b_hi)) (f64x2.extract_lane 1 (local.get $acc_b_hi))))
        (local.get $sum_b)))
    (f64.store (i32.const 8)
      (f64.add
        (f64.add
          (f64.add (f64x2.extract_lane 0 (local.get $acc_d_lo)) (f64x2.extract_lane 1 (local.get $acc_d_lo)))
          (f64.add (f64x2.extract_lane 0 (local.get $acc_d_hi)) (f64x2.extract_lane 1 (local.get $acc_d_hi))))
        (local.get $sum_d))))

  (export "delta_bf16" (func $delta_bf16))
  (export "delta_f32" (func $delta_f32)))
