//! The products against triple loops, on both paths (AVX-512 where the CPU has it, and the
//! `gemm` crate).

use super::cpu::avx512;
use super::pack::Packed;
use super::pack::NR;
use super::parallel::{matmul, matmul_tn};
use super::products::{gemm, gemm_pair, gemm_strided};

/// Panels start on a 64-byte boundary whatever the allocator returns, and hold the matrix.
#[test]
fn panels_are_cache_line_aligned() {
    for (k, n) in [(1, 1), (7, 33), (128, 384), (3, 64)] {
        let src: Vec<f32> = (0..k * n).map(|i| i as f32).collect();
        let p = Packed::with(&src, (k, n), n, 1, true);
        let ptr = p.panel_ptr().expect("panels");
        assert_eq!(ptr as usize % 64, 0, "k{k} n{n}");
        // SAFETY: the panels hold ⌈n/32⌉·k·32 values from `ptr`.
        let panels = unsafe { std::slice::from_raw_parts(ptr, n.div_ceil(NR) * k * NR) };
        for i in 0..k {
            for j in 0..n {
                assert_eq!(panels[((j / NR) * k + i) * NR + j % NR], src[i * n + j]);
            }
        }
    }
}

/// The parallel products against a triple loop, with row counts that split unevenly over
/// threads and reductions longer than one block.
#[test]
fn parallel_products_match_a_triple_loop() {
    let val = |i: usize, s: usize| ((i * 7 + s * 13) % 17) as f32 * 0.1 - 0.8;
    for (r, m, n) in [
        (1, 1, 1),
        (5, 3, 2),
        (700, 9, 33),
        (1029, 40, 7),
        (300, 100, 40),
        (300, 70, 5),
        // Rows 4 KiB apart: `aᵀ` packed.
        (600, 1024, 40),
        // Whole 32-column panels: `b` read in place (with AVX-512), `aᵀ` in place / packed.
        (700, 24, 64),
        (600, 1024, 32),
    ] {
        let a: Vec<f32> = (0..r * m).map(|i| val(i, 1)).collect();
        let b: Vec<f32> = (0..r * n).map(|i| val(i, 2)).collect();
        let c = matmul_tn(r, &a, m, &b, n);
        for i in 0..m {
            for j in 0..n {
                let want: f32 = (0..r).map(|l| a[l * m + i] * b[l * n + j]).sum();
                let got = c[i * n + j];
                assert!(
                    (got - want).abs() < 1e-3 * (1.0 + want.abs()),
                    "tn r{r} m{m} n{n}: {got} vs {want}"
                );
            }
        }
        // a [r, m] · bᵀ-shaped rhs [m, n] (b's first m rows reused as a matrix).
        let w: Vec<f32> = (0..m * n).map(|i| val(i, 3)).collect();
        let p = Packed::new(&w, (m, n), n, 1);
        let c = matmul(r, &a, &p);
        for i in 0..r {
            for j in 0..n {
                // In f64, against a bound on f32 rounding that grows with the terms summed (the
                // products' summation order differs between the kernel, the `gemm` crate and a
                // plain loop): a wrong element is off by a whole term.
                let terms = (0..m).map(|l| a[i * m + l] as f64 * w[l * n + j] as f64);
                let want: f64 = terms.clone().sum();
                let size: f64 = terms.map(f64::abs).sum();
                let err = (c[i * n + j] as f64 - want).abs();
                assert!(
                    err <= 1e-5 * (1.0 + size),
                    "matmul r{r} m{m} n{n} ({i}, {j}): {} vs {want}",
                    c[i * n + j]
                );
            }
        }
    }
}

/// Both paths (AVX-512 where the CPU has it, and the `gemm` crate) against a plain triple
/// loop: row counts around the 8-row block, column counts around the 32-column panel and
/// the 16-lane mask, strided rows, and accumulation.
#[test]
fn packed_gemm_matches_a_triple_loop() {
    let mut seed = 1u32;
    let mut next = move || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    };
    let paths: &[bool] = if avx512() { &[true, false] } else { &[false] };
    for &panels in paths {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (8, 32, 16),
            (9, 33, 5),
            (17, 48, 64),
            (32, 512, 128),
            (13, 17, 0),
        ] {
            for acc in [false, true] {
                let (lhs_rs, dst_rs) = (k + 3, n + 2);
                let lhs: Vec<f32> = (0..m * lhs_rs).map(|_| next()).collect();
                // The rhs transposed in memory, as the forward reads `weight_hh`.
                let src: Vec<f32> = (0..k * n).map(|_| next()).collect();
                let rhs = Packed::with(&src, (k, n), 1, k, panels);
                let mut dst: Vec<f32> = (0..m * dst_rs).map(|_| next()).collect();
                let mut want = dst.clone();
                for i in 0..m {
                    for j in 0..n {
                        let dot: f32 = (0..k).map(|l| lhs[i * lhs_rs + l] * src[j * k + l]).sum();
                        let w = &mut want[i * dst_rs + j];
                        *w = if acc { *w + dot } else { dot };
                    }
                }
                let mut dst_t = dst.clone();
                gemm(m, &mut dst, dst_rs, &lhs, lhs_rs, &rhs, acc);
                // The same lhs stored transposed (`[k, m + 1]`), read with strides.
                let mut lhs_t = vec![0.0f32; k * (m + 1)];
                for i in 0..m {
                    for l in 0..k {
                        lhs_t[l * (m + 1) + i] = lhs[i * lhs_rs + l];
                    }
                }
                let lhs_t = if k == 0 { vec![0.0] } else { lhs_t };
                // Both loop orders, on the transposed copy.
                gemm_strided(m, &mut dst_t, dst_rs, &lhs_t, (1, m + 1), &rhs, acc, m > 8);
                for (i, (a, b)) in dst_t.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "strided lhs, panels {panels} m{m} n{n} k{k} acc {acc} at {i}: {a} vs {b}"
                    );
                }
                for (i, (a, b)) in dst.iter().zip(&want).enumerate() {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "panels {panels} m{m} n{n} k{k} acc {acc} at {i}: {a} vs {b}"
                    );
                }
            }
        }
    }
}

/// `gemm_pair` (one register pass over both products on AVX-512, two calls elsewhere)
/// against a triple loop: a handful of input features beside a wide recurrent operand,
/// strided rows, edges of the row block and of the panel, and a long second `k`.
#[test]
fn paired_gemm_matches_a_triple_loop() {
    let val = |i: usize, s: usize| ((i * 7 + s * 13) % 19) as f32 * 0.05 - 0.45;
    let paths: &[bool] = if avx512() { &[true, false] } else { &[false] };
    for &panels in paths {
        for (m, n, k1, k2) in [
            (1, 1, 1, 1),
            (9, 33, 7, 20),
            (32, 512, 7, 128),
            (300, 40, 5, 300),
        ] {
            let (x_rs, h_rs, dst_rs) = (k1 + 2, k2 + 5, n + 1);
            let x: Vec<f32> = (0..m * x_rs).map(|i| val(i, 1)).collect();
            let h: Vec<f32> = (0..m * h_rs).map(|i| val(i, 2)).collect();
            let w1: Vec<f32> = (0..k1 * n).map(|i| val(i, 3)).collect();
            let w2: Vec<f32> = (0..k2 * n).map(|i| val(i, 4)).collect();
            let p1 = Packed::with(&w1, (k1, n), n, 1, panels);
            let p2 = Packed::with(&w2, (k2, n), n, 1, panels);
            // Stale values in dst must not leak in: the pair overwrites.
            let mut dst = vec![9.0f32; m * dst_rs];
            gemm_pair(m, &mut dst, dst_rs, (&x, x_rs, &p1), (&h, h_rs, &p2));
            for i in 0..m {
                for j in 0..n {
                    let a: f32 = (0..k1).map(|l| x[i * x_rs + l] * w1[l * n + j]).sum();
                    let b: f32 = (0..k2).map(|l| h[i * h_rs + l] * w2[l * n + j]).sum();
                    let got = dst[i * dst_rs + j];
                    assert!(
                        (got - (a + b)).abs() < 1e-3,
                        "panels {panels} m{m} n{n} k{k1}+{k2} ({i}, {j}): {got} vs {}",
                        a + b
                    );
                }
            }
        }
    }
}
