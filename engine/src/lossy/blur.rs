//! The metric's Gaussian blur (sigma 1.5) as a recursive filter: the truncated-cosine
//! approximation of Charalampidis (2016), three second-order recursions whose outputs are
//! summed, run along each row and then down each column.
//!
//! The `ssimulacra2` crate's blur computes the same filter, but where FMA is not in the
//! target's baseline (x86-64) each of its fused multiply-adds is a call to `fmaf`, and its
//! column pass runs on one thread: that blur took about two thirds of a score. Here, on a
//! CPU with FMA, each fused multiply-add is one instruction; elsewhere it is computed in f64
//! and rounded once to f32, which is exact but for rare double-rounding ties. Rows and
//! columns are filtered several side by side, so the passes vectorize. The operations are the
//! crate's, in its order, so the blurs agree but for those ties.

/// Half the filter's support, in pixels.
const RADIUS: usize = 5;

/// Input weights of the three recursions, for sigma 1.5 and radius 5.
const INPUT: [f32; 3] = [0.055_295_236, -0.058_836_687, 0.012_955_819];

/// Weights of each recursion's previous output: `2 cos(k pi / 10)` for k = 1, 3, 5, as f32.
/// The output before that has weight -1.
const PREVIOUS: [f32; 3] = [1.902_113_1, 1.175_570_5, 1.224_646_9e-16];

/// Columns filtered side by side in the column pass (then 8, then 1 for what is left).
const COLUMNS: usize = 64;

/// Rows filtered side by side in the row pass (then 1 for what is left): their recursions are
/// independent, so they run together rather than one waiting on the other.
const ROWS: usize = 8;

/// `a * b + c` rounded once, as `f32::mul_add` but without a call to `fmaf`: the f64 product
/// of two f32 is exact, and the f64 sum is rounded to f32 (twice, so a rare tie may round
/// the other way).
#[inline]
pub(super) fn fused(a: f32, b: f32, c: f32) -> f32 {
    (f64::from(a) * f64::from(b) + f64::from(c)) as f32
}

/// [`fused`], or `f32::mul_add` where the caller is compiled with FMA (`FMA` true).
#[inline(always)]
fn fused_by<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { fused(a, b, c) }
}

/// The blur of a `width` x `height` plane whose value at index `i` is `value(i)` (a plane,
/// or the product of two, computed as it is read).
#[allow(unsafe_code)]
pub(crate) fn blur(width: usize, height: usize, value: impl Fn(usize) -> f32) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features `blur_fma` is compiled for.
        return unsafe { blur_fma(width, height, value) };
    }
    blur_with::<false>(width, height, value)
}

/// [`blur_with`] compiled for FMA and AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
fn blur_fma(width: usize, height: usize, value: impl Fn(usize) -> f32) -> Vec<f32> {
    blur_with::<true>(width, height, value)
}

/// [`blur`], its fused multiply-adds FMA instructions (`FMA` true) or computed in f64.
#[inline(always)]
fn blur_with<const FMA: bool>(
    width: usize,
    height: usize,
    value: impl Fn(usize) -> f32,
) -> Vec<f32> {
    let mut rows = vec![0.0f32; width * height];
    let (mut y, mut lanes, mut lane) = (0, Vec::new(), Vec::new());
    for block in rows.chunks_exact_mut(ROWS * width) {
        along_rows::<ROWS, FMA>(block, y * width, width, &value, &mut lanes);
        y += ROWS;
    }
    for row in rows[y * width..].chunks_exact_mut(width) {
        along_rows::<1, FMA>(row, y * width, width, &value, &mut lane);
        y += 1;
    }
    let mut out = vec![0.0f32; width * height];
    let mut x = 0;
    while x + COLUMNS <= width {
        down_columns::<COLUMNS, FMA>(&rows, &mut out, x, width, height);
        x += COLUMNS;
    }
    while x + 8 <= width {
        down_columns::<8, FMA>(&rows, &mut out, x, width, height);
        x += 8;
    }
    while x < width {
        down_columns::<1, FMA>(&rows, &mut out, x, width, height);
        x += 1;
    }
    out
}

/// `N` rows from index `start`, side by side: output `n` of a row takes its inputs
/// `n - RADIUS - 1` and `n + RADIUS - 1` (zero outside), after the recursions have run from
/// `1 - RADIUS`. The inputs are first gathered into `lanes`, a pixel's `N` rows together
/// between zeros, so the recursions read them as one vector.
#[inline(always)]
fn along_rows<const N: usize, const FMA: bool>(
    out: &mut [f32],
    start: usize,
    width: usize,
    value: &impl Fn(usize) -> f32,
    lanes: &mut Vec<[f32; N]>,
) {
    // Input x at lane 2 * RADIUS + x: from output 1 - RADIUS to width - 1, the inputs read run
    // from -2 * RADIUS to width + RADIUS - 2.
    lanes.clear();
    lanes.resize(width + 3 * RADIUS - 1, [0.0; N]);
    for (x, lane) in lanes[2 * RADIUS..][..width].iter_mut().enumerate() {
        *lane = std::array::from_fn(|row| value(start + row * width + x));
    }
    let (mut previous, mut before) = ([[0.0f32; N]; 3], [[0.0f32; N]; 3]);
    // Window m is output m + 1 - RADIUS: its first and last lanes are inputs m - 2 * RADIUS
    // and m.
    for (m, pair) in lanes.windows(2 * RADIUS + 1).enumerate() {
        let (left, right) = (pair[0], pair[2 * RADIUS]);
        let mut next = [[0.0f32; N]; 3];
        for k in 0..3 {
            for i in 0..N {
                let sum = left[i] + right[i];
                let input = sum * INPUT[k] - before[k][i];
                next[k][i] = fused_by::<FMA>(PREVIOUS[k], previous[k][i], input);
            }
        }
        before = previous;
        previous = next;
        if let Some(n) = m.checked_sub(RADIUS - 1) {
            for i in 0..N {
                out[i * width + n] = next[0][i] + next[1][i] + next[2][i];
            }
        }
    }
}

/// `N` columns from `x`, filtered like a row, side by side.
#[inline(always)]
fn down_columns<const N: usize, const FMA: bool>(
    input: &[f32],
    out: &mut [f32],
    x: usize,
    width: usize,
    height: usize,
) {
    let radius = RADIUS as isize;
    let zeros = [0.0f32; N];
    let row = |i: isize| -> &[f32] {
        if (0..height as isize).contains(&i) {
            &input[i as usize * width + x..][..N]
        } else {
            &zeros
        }
    };
    let (mut previous, mut before) = ([[0.0f32; N]; 3], [[0.0f32; N]; 3]);
    for n in 1 - radius..height as isize {
        let (top, bottom) = (row(n - radius - 1), row(n + radius - 1));
        let mut next = [[0.0f32; N]; 3];
        for k in 0..3 {
            for i in 0..N {
                let sum = top[i] + bottom[i];
                let recursion = fused_by::<FMA>(previous[k][i], -PREVIOUS[k], before[k][i]);
                next[k][i] = fused_by::<FMA>(sum, INPUT[k], -recursion);
            }
        }
        before = previous;
        previous = next;
        if n >= 0 {
            let total = out[n as usize * width + x..][..N].iter_mut();
            for (i, o) in total.enumerate() {
                *o = next[0][i] + next[1][i] + next[2][i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plane of smooth waves plus a step, like image content.
    fn plane(width: usize, height: usize) -> Vec<f32> {
        (0..width * height)
            .map(|i| {
                let (x, y) = ((i % width) as f32, (i / width) as f32);
                (x * 0.37).sin() * (y * 0.21).cos() * 0.3 + if x > 20.0 { 0.5 } else { 0.1 }
            })
            .collect()
    }

    /// Against the crate's blur, on sizes with and without a partial column block.
    #[test]
    fn matches_the_crates_blur() {
        for (width, height) in [(150, 97), (64, 64), (9, 200), (300, 11), (77, 20)] {
            let input = plane(width, height);
            let theirs = ssimulacra2::Blur::new(width, height).blur(&[
                input.clone(),
                input.clone(),
                input.clone(),
            ]);
            let ours = blur(width, height, |i| input[i]);
            let worst = ours
                .iter()
                .zip(&theirs[0])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let differ = ours.iter().zip(&theirs[0]).filter(|(a, b)| a != b).count();
            assert!(
                worst < 1e-6 && differ * 1000 < ours.len(),
                "{width}x{height}: {differ} differ, by up to {worst}"
            );
        }
    }

    /// Rows filtered side by side give each row the bits it gets alone, with the fused
    /// multiply-adds computed either way.
    #[test]
    fn rows_side_by_side_match_rows_alone() {
        fn check<const FMA: bool>() {
            let (width, height) = (37, ROWS + 3);
            let input = plane(width, height);
            let value = |i: usize| input[i] * 1.5;
            let mut together = vec![0.0f32; width * ROWS];
            along_rows::<ROWS, FMA>(&mut together, width, width, &value, &mut Vec::new());
            for (y, row) in together.chunks_exact(width).enumerate() {
                let mut alone = vec![0.0f32; width];
                along_rows::<1, FMA>(&mut alone, (y + 1) * width, width, &value, &mut Vec::new());
                assert_eq!(row, &alone[..], "row {}, FMA {FMA}", y + 1);
            }
        }
        check::<false>();
        check::<true>();
    }

    /// Both ways of computing the fused multiply-adds blur alike but for rare ties.
    #[test]
    fn fma_and_f64_agree() {
        let (width, height) = (150, 97);
        let input = plane(width, height);
        let (a, b) = (
            blur_with::<true>(width, height, |i| input[i]),
            blur_with::<false>(width, height, |i| input[i]),
        );
        let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
        assert!(differ * 1000 < a.len(), "{differ} of {} differ", a.len());
    }

    /// A constant plane stays constant away from the edges, which fade to zero.
    #[test]
    fn keeps_a_constant_inside() {
        let out = blur(40, 40, |_| 2.0);
        assert!(
            (out[20 * 40 + 20] - 2.0).abs() < 1e-4,
            "{}",
            out[20 * 40 + 20]
        );
        assert!(out[0] < out[20 * 40 + 20]);
    }
}
