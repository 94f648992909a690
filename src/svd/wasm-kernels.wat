;; deltarank's WebAssembly kernels (src/svd/wasm-kernels.ts runs them on copies in this module's
;; memory, which starts at byte 0 for each call). wasm-kernels-bytes.ts holds the bytes this
;; assembles to (`npm run wasm` writes them anew; test/wasm-modules.test.ts assembles this with
;; wabt and requires the same bytes).
;;
;; householderQr: Householder QR of a panel of columns, householderQrColumns' arithmetic
;; (src/svd/qr.ts). Column c of the p columns (len f64 each) lies at byte c·len·8, τ at byte tauAt.
;; For each column k: its norm (one pass of max|x| and Σx², a scaled pass where a square could
;; overflow or underflow), the reflector v = [1, x_{k+1…}/(α − β)] with τ = (β − α)/β
;; (β = −sign(α)·‖x‖), then the columns right of it four at a time (d = τ·(x_k + Σ v_i·x_i),
;; x −= d·v), two f64 lanes per instruction.
;;
;; chase: sweeps from … to − 1 of the bulge chase from band to bidiagonal, bandToBidiagonalSteps'
;; arithmetic to the last bit (src/svd/bidiagonal-from-band.ts): the band of order n and bandwidth b
;; at byte 0, entry (i, j) at f64 index i·W + j − i + 1.
(module
  (memory (export "memory") 1)
  (func (export "householderQr") (param $p i32) (param $len i32) (param $tauAt i32)
    (local $k i32) (local $reflectors i32) (local $stride i32) (local $row i32)
    (local $start i32) (local $stop i32) (local $off i32)
    (local $j i32) (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $r4 i32)
    (local $scale f64) (local $norm2 f64) (local $norm f64) (local $x f64) (local $inv f64)
    (local $alpha f64) (local $beta f64) (local $t f64) (local $h f64)
    (local $d1 f64) (local $d2 f64) (local $d3 f64) (local $d4 f64)
    (local $vh v128) (local $va v128) (local $vs v128) (local $vn v128)
    (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $a4 v128)
    (local.set $stride (i32.shl (local.get $len) (i32.const 3)))
    (local.set $stop (local.get $stride))
    (local.set $reflectors (select (local.get $p) (local.get $len) (i32.lt_u (local.get $p) (local.get $len))))
    (local.set $k (i32.const 0))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $k) (local.get $reflectors)))
        (local.set $row (i32.mul (local.get $k) (local.get $stride)))
        ;; scale = max |x_i|, norm2 = Σ x_i², i = k … len − 1
        (local.set $off (i32.shl (local.get $k) (i32.const 3)))
        (local.set $vs (f64x2.splat (f64.const 0)))
        (local.set $vn (f64x2.splat (f64.const 0)))
        (block $e1 (loop $l1
          (br_if $e1 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
          (local.set $va (v128.load (i32.add (local.get $row) (local.get $off))))
          (local.set $vs (f64x2.max (local.get $vs) (f64x2.abs (local.get $va))))
          (local.set $vn (f64x2.add (local.get $vn) (f64x2.mul (local.get $va) (local.get $va))))
          (local.set $off (i32.add (local.get $off) (i32.const 16)))
          (br $l1)))
        (local.set $scale (f64.max (f64x2.extract_lane 0 (local.get $vs)) (f64x2.extract_lane 1 (local.get $vs))))
        (local.set $norm2 (f64.add (f64x2.extract_lane 0 (local.get $vn)) (f64x2.extract_lane 1 (local.get $vn))))
        (if (i32.lt_u (local.get $off) (local.get $stop)) (then
          (local.set $x (f64.load (i32.add (local.get $row) (local.get $off))))
          (local.set $scale (f64.max (local.get $scale) (f64.abs (local.get $x))))
          (local.set $norm2 (f64.add (local.get $norm2) (f64.mul (local.get $x) (local.get $x))))))
        (f64.store (i32.add (local.get $tauAt) (i32.shl (local.get $k) (i32.const 3))) (f64.const 0))
        (if (f64.ne (local.get $scale) (f64.const 0)) (then
          (local.set $norm (f64.sqrt (local.get $norm2)))
          (if (i32.eqz (i32.and (f64.lt (local.get $scale) (f64.const 1e150)) (f64.gt (local.get $scale) (f64.const 1e-150)))) (then
            (local.set $inv (f64.div (f64.const 1) (local.get $scale)))
            (local.set $norm2 (f64.const 0))
            (local.set $off (i32.shl (local.get $k) (i32.const 3)))
            (block $e2 (loop $l2
              (br_if $e2 (i32.ge_u (local.get $off) (local.get $stop)))
              (local.set $x (f64.mul (f64.load (i32.add (local.get $row) (local.get $off))) (local.get $inv)))
              (local.set $norm2 (f64.add (local.get $norm2) (f64.mul (local.get $x) (local.get $x))))
              (local.set $off (i32.add (local.get $off) (i32.const 8)))
              (br $l2)))
            (local.set $norm (f64.mul (local.get $scale) (f64.sqrt (local.get $norm2))))))
          (local.set $alpha (f64.load (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 3)))))
          (local.set $beta (select (local.get $norm) (f64.neg (local.get $norm)) (f64.lt (local.get $alpha) (f64.const 0))))
          ;; v = [1, x_{k+1…}/(α − β)], τ = (β − α)/β
          (local.set $inv (f64.div (f64.const 1) (f64.sub (local.get $alpha) (local.get $beta))))
          (local.set $start (i32.shl (i32.add (local.get $k) (i32.const 1)) (i32.const 3)))
          (local.set $vh (f64x2.splat (local.get $inv)))
          (local.set $off (local.get $start))
          (block $e3 (loop $l3
            (br_if $e3 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
            (v128.store (i32.add (local.get $row) (local.get $off))
              (f64x2.mul (v128.load (i32.add (local.get $row) (local.get $off))) (local.get $vh)))
            (local.set $off (i32.add (local.get $off) (i32.const 16)))
            (br $l3)))
          (if (i32.lt_u (local.get $off) (local.get $stop)) (then
            (f64.store (i32.add (local.get $row) (local.get $off))
              (f64.mul (f64.load (i32.add (local.get $row) (local.get $off))) (local.get $inv)))))
          (local.set $t (f64.div (f64.sub (local.get $beta) (local.get $alpha)) (local.get $beta)))
          (f64.store (i32.add (local.get $tauAt) (i32.shl (local.get $k) (i32.const 3))) (local.get $t))
          (f64.store (i32.add (local.get $row) (i32.shl (local.get $k) (i32.const 3))) (local.get $beta))
          ;; columns j > k, four at a time: d = t·(x_k + Σ h_i x_i), x −= d·h
          (local.set $j (i32.add (local.get $k) (i32.const 1)))
          (block $e4 (loop $l4
            (br_if $e4 (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $p)))
            (local.set $r1 (i32.mul (local.get $j) (local.get $stride)))
            (local.set $r2 (i32.add (local.get $r1) (local.get $stride)))
            (local.set $r3 (i32.add (local.get $r2) (local.get $stride)))
            (local.set $r4 (i32.add (local.get $r3) (local.get $stride)))
            (local.set $a1 (f64x2.splat (f64.const 0)))
            (local.set $a2 (f64x2.splat (f64.const 0)))
            (local.set $a3 (f64x2.splat (f64.const 0)))
            (local.set $a4 (f64x2.splat (f64.const 0)))
            (local.set $off (local.get $start))
            (block $e5 (loop $l5
              (br_if $e5 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
              (local.set $vh (v128.load (i32.add (local.get $row) (local.get $off))))
              (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (local.get $vh) (v128.load (i32.add (local.get $r1) (local.get $off))))))
              (local.set $a2 (f64x2.add (local.get $a2) (f64x2.mul (local.get $vh) (v128.load (i32.add (local.get $r2) (local.get $off))))))
              (local.set $a3 (f64x2.add (local.get $a3) (f64x2.mul (local.get $vh) (v128.load (i32.add (local.get $r3) (local.get $off))))))
              (local.set $a4 (f64x2.add (local.get $a4) (f64x2.mul (local.get $vh) (v128.load (i32.add (local.get $r4) (local.get $off))))))
              (local.set $off (i32.add (local.get $off) (i32.const 16)))
              (br $l5)))
            (local.set $d1 (f64.add (f64x2.extract_lane 0 (local.get $a1)) (f64x2.extract_lane 1 (local.get $a1))))
            (local.set $d2 (f64.add (f64x2.extract_lane 0 (local.get $a2)) (f64x2.extract_lane 1 (local.get $a2))))
            (local.set $d3 (f64.add (f64x2.extract_lane 0 (local.get $a3)) (f64x2.extract_lane 1 (local.get $a3))))
            (local.set $d4 (f64.add (f64x2.extract_lane 0 (local.get $a4)) (f64x2.extract_lane 1 (local.get $a4))))
            (if (i32.lt_u (local.get $off) (local.get $stop)) (then
              (local.set $h (f64.load (i32.add (local.get $row) (local.get $off))))
              (local.set $d1 (f64.add (local.get $d1) (f64.mul (local.get $h) (f64.load (i32.add (local.get $r1) (local.get $off))))))
              (local.set $d2 (f64.add (local.get $d2) (f64.mul (local.get $h) (f64.load (i32.add (local.get $r2) (local.get $off))))))
              (local.set $d3 (f64.add (local.get $d3) (f64.mul (local.get $h) (f64.load (i32.add (local.get $r3) (local.get $off))))))
              (local.set $d4 (f64.add (local.get $d4) (f64.mul (local.get $h) (f64.load (i32.add (local.get $r4) (local.get $off))))))))
            (local.set $off (i32.shl (local.get $k) (i32.const 3)))
            (local.set $d1 (f64.mul (local.get $t) (f64.add (local.get $d1) (f64.load (i32.add (local.get $r1) (local.get $off))))))
            (local.set $d2 (f64.mul (local.get $t) (f64.add (local.get $d2) (f64.load (i32.add (local.get $r2) (local.get $off))))))
            (local.set $d3 (f64.mul (local.get $t) (f64.add (local.get $d3) (f64.load (i32.add (local.get $r3) (local.get $off))))))
            (local.set $d4 (f64.mul (local.get $t) (f64.add (local.get $d4) (f64.load (i32.add (local.get $r4) (local.get $off))))))
            (f64.store (i32.add (local.get $r1) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r1) (local.get $off))) (local.get $d1)))
            (f64.store (i32.add (local.get $r2) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r2) (local.get $off))) (local.get $d2)))
            (f64.store (i32.add (local.get $r3) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r3) (local.get $off))) (local.get $d3)))
            (f64.store (i32.add (local.get $r4) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r4) (local.get $off))) (local.get $d4)))
            (local.set $a1 (f64x2.splat (local.get $d1)))
            (local.set $a2 (f64x2.splat (local.get $d2)))
            (local.set $a3 (f64x2.splat (local.get $d3)))
            (local.set $a4 (f64x2.splat (local.get $d4)))
            (local.set $off (local.get $start))
            (block $e6 (loop $l6
              (br_if $e6 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
              (local.set $vh (v128.load (i32.add (local.get $row) (local.get $off))))
              (v128.store (i32.add (local.get $r1) (local.get $off)) (f64x2.sub (v128.load (i32.add (local.get $r1) (local.get $off))) (f64x2.mul (local.get $a1) (local.get $vh))))
              (v128.store (i32.add (local.get $r2) (local.get $off)) (f64x2.sub (v128.load (i32.add (local.get $r2) (local.get $off))) (f64x2.mul (local.get $a2) (local.get $vh))))
              (v128.store (i32.add (local.get $r3) (local.get $off)) (f64x2.sub (v128.load (i32.add (local.get $r3) (local.get $off))) (f64x2.mul (local.get $a3) (local.get $vh))))
              (v128.store (i32.add (local.get $r4) (local.get $off)) (f64x2.sub (v128.load (i32.add (local.get $r4) (local.get $off))) (f64x2.mul (local.get $a4) (local.get $vh))))
              (local.set $off (i32.add (local.get $off) (i32.const 16)))
              (br $l6)))
            (if (i32.lt_u (local.get $off) (local.get $stop)) (then
              (local.set $h (f64.load (i32.add (local.get $row) (local.get $off))))
              (f64.store (i32.add (local.get $r1) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r1) (local.get $off))) (f64.mul (local.get $d1) (local.get $h))))
              (f64.store (i32.add (local.get $r2) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r2) (local.get $off))) (f64.mul (local.get $d2) (local.get $h))))
              (f64.store (i32.add (local.get $r3) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r3) (local.get $off))) (f64.mul (local.get $d3) (local.get $h))))
              (f64.store (i32.add (local.get $r4) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r4) (local.get $off))) (f64.mul (local.get $d4) (local.get $h))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $l4)))
          ;; the columns left over, one at a time
          (block $e7 (loop $l7
            (br_if $e7 (i32.ge_u (local.get $j) (local.get $p)))
            (local.set $r1 (i32.mul (local.get $j) (local.get $stride)))
            (local.set $a1 (f64x2.splat (f64.const 0)))
            (local.set $off (local.get $start))
            (block $e8 (loop $l8
              (br_if $e8 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
              (local.set $a1 (f64x2.add (local.get $a1) (f64x2.mul (v128.load (i32.add (local.get $row) (local.get $off))) (v128.load (i32.add (local.get $r1) (local.get $off))))))
              (local.set $off (i32.add (local.get $off) (i32.const 16)))
              (br $l8)))
            (local.set $d1 (f64.add (f64x2.extract_lane 0 (local.get $a1)) (f64x2.extract_lane 1 (local.get $a1))))
            (if (i32.lt_u (local.get $off) (local.get $stop)) (then
              (local.set $d1 (f64.add (local.get $d1) (f64.mul (f64.load (i32.add (local.get $row) (local.get $off))) (f64.load (i32.add (local.get $r1) (local.get $off))))))))
            (local.set $off (i32.shl (local.get $k) (i32.const 3)))
            (local.set $d1 (f64.mul (local.get $t) (f64.add (local.get $d1) (f64.load (i32.add (local.get $r1) (local.get $off))))))
            (f64.store (i32.add (local.get $r1) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r1) (local.get $off))) (local.get $d1)))
            (local.set $a1 (f64x2.splat (local.get $d1)))
            (local.set $off (local.get $start))
            (block $e9 (loop $l9
              (br_if $e9 (i32.gt_u (i32.add (local.get $off) (i32.const 16)) (local.get $stop)))
              (v128.store (i32.add (local.get $r1) (local.get $off)) (f64x2.sub (v128.load (i32.add (local.get $r1) (local.get $off))) (f64x2.mul (local.get $a1) (v128.load (i32.add (local.get $row) (local.get $off))))))
              (local.set $off (i32.add (local.get $off) (i32.const 16)))
              (br $l9)))
            (if (i32.lt_u (local.get $off) (local.get $stop)) (then
              (f64.store (i32.add (local.get $r1) (local.get $off)) (f64.sub (f64.load (i32.add (local.get $r1) (local.get $off))) (f64.mul (local.get $d1) (f64.load (i32.add (local.get $row) (local.get $off))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $l7)))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $next))))
  ;; √(x² + y²) without overflow or underflow of the squares
  (func $norm2 (param $x f64) (param $y f64) (result f64)
    (local $big f64)
    (local.set $big (f64.max (f64.abs (local.get $x)) (f64.abs (local.get $y))))
    (if (result f64) (i32.and (f64.lt (local.get $big) (f64.const 1e150)) (f64.gt (local.get $big) (f64.const 1e-150)))
      (then (f64.sqrt (f64.add (f64.mul (local.get $x) (local.get $x)) (f64.mul (local.get $y) (local.get $y)))))
      (else
        (if (result f64) (f64.eq (local.get $big) (f64.const 0))
          (then (f64.const 0))
          (else
            (local.set $x (f64.div (local.get $x) (local.get $big)))
            (local.set $y (f64.div (local.get $y) (local.get $big)))
            (f64.mul (local.get $big) (f64.sqrt (f64.add (f64.mul (local.get $x) (local.get $x)) (f64.mul (local.get $y) (local.get $y))))))))))
  (func (export "chase") (param $n i32) (param $b i32) (param $W i32) (param $from i32) (param $to i32)
    (local $i i32) (local $j i32) (local $row i32) (local $col i32) (local $k i32) (local $end i32)
    (local $step i32) (local $t i32) (local $last i32) (local $u i32) (local $v i32) (local $r1 i32)
    (local $x f64) (local $y f64) (local $r f64) (local $c f64) (local $s f64) (local $p f64) (local $q f64) (local $fill f64)
    (local.set $step (i32.shl (i32.sub (local.get $W) (i32.const 1)) (i32.const 3)))
    (local.set $i (local.get $from))
    (block $sweeps (loop $sweep
      (br_if $sweeps (i32.ge_u (local.get $i) (local.get $to)))
      ;; j = min(i + b, n − 1) down to i + 2
      (local.set $j (i32.add (local.get $i) (local.get $b)))
      (if (i32.gt_u (local.get $j) (i32.sub (local.get $n) (i32.const 1))) (then (local.set $j (i32.sub (local.get $n) (i32.const 1)))))
      (block $cols (loop $colloop
        (br_if $cols (i32.lt_u (local.get $j) (i32.add (local.get $i) (i32.const 2))))
        (local.set $row (local.get $i))
        (local.set $col (local.get $j))
        (block $chain (loop $bulge
          ;; x = (row, col − 1), y = (row, col): byte 8·(row·W + col − row + 1) for y
          (local.set $k (i32.shl (i32.add (i32.sub (i32.add (i32.mul (local.get $row) (local.get $W)) (local.get $col)) (local.get $row)) (i32.const 1)) (i32.const 3)))
          (local.set $y (f64.load (local.get $k)))
          (br_if $chain (f64.eq (local.get $y) (f64.const 0)))
          (local.set $x (f64.load (i32.sub (local.get $k) (i32.const 8))))
          (local.set $r (call $norm2 (local.get $x) (local.get $y)))
          (local.set $c (f64.div (local.get $x) (local.get $r)))
          (local.set $s (f64.div (local.get $y) (local.get $r)))
          ;; columns col − 1, col over rows row … min(col, n − 1): entry (t, col − 1) at t·(W − 1) + col
          (local.set $r1 (local.get $col))
          (if (i32.gt_u (local.get $r1) (i32.sub (local.get $n) (i32.const 1))) (then (local.set $r1 (i32.sub (local.get $n) (i32.const 1)))))
          (local.set $t (i32.shl (i32.add (i32.mul (local.get $row) (i32.sub (local.get $W) (i32.const 1))) (local.get $col)) (i32.const 3)))
          (local.set $end (i32.shl (i32.add (i32.mul (local.get $r1) (i32.sub (local.get $W) (i32.const 1))) (local.get $col)) (i32.const 3)))
          (block $e1 (loop $l1
            (br_if $e1 (i32.gt_u (local.get $t) (local.get $end)))
            (local.set $p (f64.load (local.get $t)))
            (local.set $q (f64.load offset=8 (local.get $t)))
            (f64.store (local.get $t) (f64.add (f64.mul (local.get $c) (local.get $p)) (f64.mul (local.get $s) (local.get $q))))
            (f64.store offset=8 (local.get $t) (f64.sub (f64.mul (local.get $c) (local.get $q)) (f64.mul (local.get $s) (local.get $p))))
            (local.set $t (i32.add (local.get $t) (local.get $step)))
            (br $l1)))
          (f64.store (local.get $k) (f64.const 0))
          ;; the fill at (col, col − 1): rows col − 1, col
          (local.set $fill (f64.load (i32.shl (i32.mul (local.get $col) (local.get $W)) (i32.const 3))))
          (br_if $chain (f64.eq (local.get $fill) (f64.const 0)))
          (local.set $x (f64.load (i32.shl (i32.add (i32.mul (i32.sub (local.get $col) (i32.const 1)) (local.get $W)) (i32.const 1)) (i32.const 3))))
          (local.set $r (call $norm2 (local.get $x) (local.get $fill)))
          (local.set $c (f64.div (local.get $x) (local.get $r)))
          (local.set $s (f64.div (local.get $fill) (local.get $r)))
          (local.set $last (i32.add (local.get $col) (local.get $b)))
          (if (i32.gt_u (local.get $last) (i32.sub (local.get $n) (i32.const 1))) (then (local.set $last (i32.sub (local.get $n) (i32.const 1)))))
          ;; u = byte of (col − 1, t) at t = col − 1, v the same in row col; both runs contiguous
          (local.set $u (i32.shl (i32.add (i32.mul (i32.sub (local.get $col) (i32.const 1)) (local.get $W)) (i32.const 1)) (i32.const 3)))
          (local.set $v (i32.shl (i32.mul (local.get $col) (local.get $W)) (i32.const 3)))
          (local.set $end (i32.add (local.get $u) (i32.shl (i32.sub (local.get $last) (i32.sub (local.get $col) (i32.const 1))) (i32.const 3))))
          (block $e2 (loop $l2
            (br_if $e2 (i32.gt_u (local.get $u) (local.get $end)))
            (local.set $p (f64.load (local.get $u)))
            (local.set $q (f64.load (local.get $v)))
            (f64.store (local.get $u) (f64.add (f64.mul (local.get $c) (local.get $p)) (f64.mul (local.get $s) (local.get $q))))
            (f64.store (local.get $v) (f64.sub (f64.mul (local.get $c) (local.get $q)) (f64.mul (local.get $s) (local.get $p))))
            (local.set $u (i32.add (local.get $u) (i32.const 8)))
            (local.set $v (i32.add (local.get $v) (i32.const 8)))
            (br $l2)))
          (f64.store (i32.shl (i32.mul (local.get $col) (local.get $W)) (i32.const 3)) (f64.const 0))
          (br_if $chain (i32.gt_u (i32.add (local.get $col) (local.get $b)) (i32.sub (local.get $n) (i32.const 1))))
          (local.set $row (i32.sub (local.get $col) (i32.const 1)))
          (local.set $col (i32.add (local.get $col) (local.get $b)))
          (br $bulge)))
        (local.set $j (i32.sub (local.get $j) (i32.const 1)))
        (br $colloop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $sweep)))))
