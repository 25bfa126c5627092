//! The metric's Gaussian blur (sigma 1.5) as a recursive filter: the truncated-cosine
//! approximation of Charalampidis (2016), three second-order recursions whose outputs are
//! summed, run along each row and then down each column.
//!
//! The `ssimulacra2` crate's blur computes the same filter, but where FMA is not in the
//! target's baseline (x86-64) each of its fused multiply-adds is a call to `fmaf`, and its
//! column pass runs on one thread: that blur took about two thirds of a score. Here each
//! fused multiply-add is computed in f64 and rounded once to f32, which is exact but for
//! rare double-rounding ties, and the column pass vectorizes; the operations are the crate's,
//! in its order, so the blurs agree but for those ties.

/// Half the filter's support, in pixels.
const RADIUS: usize = 5;

/// Input weights of the three recursions, for sigma 1.5 and radius 5.
const INPUT: [f32; 3] = [0.055_295_236, -0.058_836_687, 0.012_955_819];

/// Weights of each recursion's previous output: `2 cos(k pi / 10)` for k = 1, 3, 5, as f32.
/// The output before that has weight -1.
const PREVIOUS: [f32; 3] = [1.902_113_1, 1.175_570_5, 1.224_646_9e-16];

/// Columns filtered side by side in the column pass (then 8, then 1 for what is left).
const COLUMNS: usize = 64;

/// `a * b + c` rounded once, as `f32::mul_add` but without a call to `fmaf`: the f64 product
/// of two f32 is exact, and the f64 sum is rounded to f32 (twice, so a rare tie may round
/// the other way).
#[inline]
pub(super) fn fused(a: f32, b: f32, c: f32) -> f32 {
    (f64::from(a) * f64::from(b) + f64::from(c)) as f32
}

/// The blur of a `width` x `height` plane whose value at index `i` is `value(i)` (a plane,
/// or the product of two, computed as it is read).
pub(crate) fn blur(width: usize, height: usize, value: impl Fn(usize) -> f32) -> Vec<f32> {
    let mut rows = vec![0.0f32; width * height];
    for (y, row) in rows.chunks_exact_mut(width).enumerate() {
        let start = y * width;
        along_row(row, |x| value(start + x));
    }
    let mut out = vec![0.0f32; width * height];
    let mut x = 0;
    while x + COLUMNS <= width {
        down_columns::<COLUMNS>(&rows, &mut out, x, width, height);
        x += COLUMNS;
    }
    while x + 8 <= width {
        down_columns::<8>(&rows, &mut out, x, width, height);
        x += 8;
    }
    while x < width {
        down_columns::<1>(&rows, &mut out, x, width, height);
        x += 1;
    }
    out
}

/// One row: output `n` takes inputs `n - RADIUS - 1` and `n + RADIUS - 1` (zero outside),
/// after the recursions have run from `1 - RADIUS`.
fn along_row(out: &mut [f32], value: impl Fn(usize) -> f32) {
    let width = out.len() as isize;
    let radius = RADIUS as isize;
    let at = |i: isize| {
        if (0..width).contains(&i) {
            value(i as usize)
        } else {
            0.0
        }
    };
    let (mut previous, mut before) = ([0.0f32; 3], [0.0f32; 3]);
    for n in 1 - radius..width {
        let sum = at(n - radius - 1) + at(n + radius - 1);
        let mut next = [0.0f32; 3];
        for k in 0..3 {
            next[k] = fused(PREVIOUS[k], previous[k], sum * INPUT[k] - before[k]);
        }
        before = previous;
        previous = next;
        if n >= 0 {
            out[n as usize] = next[0] + next[1] + next[2];
        }
    }
}

/// `N` columns from `x`, filtered like a row, side by side.
fn down_columns<const N: usize>(
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
                let recursion = fused(previous[k][i], -PREVIOUS[k], before[k][i]);
                next[k][i] = fused(sum, INPUT[k], -recursion);
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
