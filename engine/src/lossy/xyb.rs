//! Linear RGB to the metric's XYB planes, bit for bit as the `ssimulacra2` crate converts
//! (through `yuvxyb`), but eight pixels at a time with FMA instructions where the CPU has them.
//!
//! The crate's conversion mixes with `f32::mul_add` and takes a cube root (`yuvxyb`'s port of
//! FreeBSD's `cbrtf`) one value at a time; where FMA is not in the target's baseline (x86-64)
//! each mix is a call to `fmaf`. A hardware FMA rounds as `fmaf` does, and the cube root here
//! is the same operations in the same order, so the planes are the same bits. Without FMA the
//! crate converts.

use ssimulacra2::{LinearRgb, Xyb};

use super::blur::fused;

/// The opsin absorbance matrix, row by row, and its bias (the same on each row).
const MIX: [[f32; 3]; 3] = [
    [0.30, 1.0 - 0.078 - 0.30, 0.078],
    [0.23, 1.0 - 0.078 - 0.23, 0.078],
    [
        0.243_422_69,
        0.204_767_45,
        1.0 - 0.243_422_69 - 0.204_767_45,
    ],
];
const BIAS: f32 = 0.003_793_073_4;

/// Pixels converted together.
const LANES: usize = 8;

/// Writes the XYB of the linear RGB `pixels`, shifted into about 0..1 (X scaled up, B made
/// relative to Y), to `x`, `y` and `b` (one value a pixel each).
#[allow(unsafe_code)]
pub(super) fn positive(pixels: &[[f32; 3]], x: &mut [f32], y: &mut [f32], b: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has the features `positive_fma` is compiled for.
        unsafe { positive_fma(pixels, x, y, b) };
        return;
    }
    by_crate(pixels, x, y, b);
}

/// [`positive`] through the crate's conversion.
fn by_crate(pixels: &[[f32; 3]], x: &mut [f32], y: &mut [f32], b: &mut [f32]) {
    let xyb = Xyb::from(
        LinearRgb::new(pixels.to_vec(), pixels.len(), 1).expect("one row holds the pixels"),
    );
    for (i, &p) in xyb.data().iter().enumerate() {
        (x[i], y[i], b[i]) = shifted(p);
    }
}

/// The crate's XYB shifted as the metric uses it.
#[inline(always)]
fn shifted([px, py, pb]: [f32; 3]) -> (f32, f32, f32) {
    (fused(px, 14.0, 0.42), py + 0.01, (pb - py) + 0.55)
}

/// [`positive`] with FMA and AVX2 instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "fma,avx2")]
fn positive_fma(pixels: &[[f32; 3]], x: &mut [f32], y: &mut [f32], b: &mut [f32]) {
    let absorbed = -cube_root(BIAS);
    let (x, y, b) = (
        &mut x[..pixels.len()],
        &mut y[..pixels.len()],
        &mut b[..pixels.len()],
    );
    let mut start = 0;
    for chunk in pixels.chunks_exact(LANES) {
        let chunk: &[[f32; 3]; LANES] = chunk.try_into().expect("chunks of LANES");
        let mut mixed = [[0.0f32; LANES]; 3];
        for (row, out) in MIX.iter().zip(&mut mixed) {
            for (o, p) in out.iter_mut().zip(chunk) {
                *o = mixed_root(row, p, absorbed);
            }
        }
        for i in 0..LANES {
            let xyb = to_xyb([mixed[0][i], mixed[1][i], mixed[2][i]]);
            (x[start + i], y[start + i], b[start + i]) = shifted(xyb);
        }
        start += LANES;
    }
    for (i, p) in pixels.iter().enumerate().skip(start) {
        let mixed = MIX.map(|row| mixed_root(&row, p, absorbed));
        (x[i], y[i], b[i]) = shifted(to_xyb(mixed));
    }
}

/// One channel of the opsin mix, clamped at zero, its cube root, less the bias's.
#[inline(always)]
fn mixed_root(row: &[f32; 3], [r, g, b]: &[f32; 3], absorbed: f32) -> f32 {
    let mixed = row[0].mul_add(*r, row[1].mul_add(*g, row[2].mul_add(*b, BIAS)));
    // Not `max`: a NaN stays NaN, as in the crate.
    let mixed = if mixed < 0.0 { 0.0 } else { mixed };
    cube_root(mixed) + absorbed
}

#[inline(always)]
fn to_xyb([m0, m1, m2]: [f32; 3]) -> [f32; 3] {
    [0.5 * (m0 - m1), 0.5 * (m0 + m1), m2]
}

/// `yuvxyb`'s cube root: a first guess from the float's bits (a third of them, plus a third of
/// the exponent bias, slightly lowered), then two Newton steps in f64. Zero and subnormals get
/// the same inexact value as there (the mix adds a bias, so they come only from the clamp).
#[inline(always)]
fn cube_root(x: f32) -> f32 {
    const B1: u32 = 709_958_130;
    let bits = x.to_bits();
    let guess = f32::from_bits((bits & 0x8000_0000) | ((bits & 0x7FFF_FFFF) / 3 + B1));
    let (mut t, x) = (f64::from(guess), f64::from(x));
    for _ in 0..2 {
        let r = t * t * t;
        t = t * (x + x + r) / (x + r + r);
    }
    t as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pixels of every kind the metric meets: in range, out of it (negative, over 1), zeros,
    /// tiny and huge.
    fn pixels(n: usize) -> Vec<[f32; 3]> {
        let mut seed = 0x9e37_79b9_u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let mut out: Vec<[f32; 3]> = (0..n)
            .map(|_| std::array::from_fn(|_| (next() % 1_000_003) as f32 / 1e6 - 0.05))
            .collect();
        out[..6].copy_from_slice(&[
            [0.0; 3],
            [1.0; 3],
            [-1.0, 0.5, 2.0],
            [1e-30, 1e-12, 3e-7],
            [1e6, 0.0, 1e-3],
            [-0.0, 1.0, -0.0],
        ]);
        out
    }

    type Convert = fn(&[[f32; 3]], &mut [f32], &mut [f32], &mut [f32]);

    fn converted(pixels: &[[f32; 3]], convert: Convert) -> Vec<u32> {
        let n = pixels.len();
        let (mut x, mut y, mut b) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        convert(pixels, &mut x, &mut y, &mut b);
        x.iter().chain(&y).chain(&b).map(|v| v.to_bits()).collect()
    }

    /// On a CPU with FMA and AVX2 (this machine's and CI's), `positive` takes the eight-lane
    /// way; elsewhere it is the crate's conversion and this compares it with itself.
    #[test]
    fn the_same_bits_as_the_crate() {
        // 8 lanes, then what is left: 1,003 pixels leave 3.
        let pixels = pixels(1_003);
        assert_eq!(converted(&pixels, positive), converted(&pixels, by_crate));
        assert_eq!(
            converted(&pixels[..5], positive),
            converted(&pixels[..5], by_crate)
        );
    }

    #[test]
    fn cube_roots() {
        for v in [1.0f32, 8.0, 27.0, 0.001, 1e-20, 3.5] {
            let root = cube_root(v);
            assert!(
                (f64::from(root).powi(3) / f64::from(v) - 1.0).abs() < 1e-6,
                "{v}"
            );
        }
    }
}
