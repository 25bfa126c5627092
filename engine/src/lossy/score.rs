//! SSIMULACRA2 scores against a reference prepared once.
//!
//! The metric compares two images at up to six scales, each half the size of the one before.
//! At every scale both images go to XYB, get blurred, and feed an SSIM map and an edge map whose
//! averages are weighted into one score (100 for identical images, lower is worse). Everything
//! that depends on the source alone (its XYB planes, their blurred mean and blurred variance) is
//! computed once in [`Reference::new`]; [`Reference::score`] computes only the candidate's side
//! and the cross term. The result agrees with `ssimulacra2::compute_frame_ssimulacra2` on the
//! same pair to within 1e-6: the colour conversions give the `ssimulacra2` crate's bits (see
//! `xyb`), the blur computes the crate's filter with the crate's operations (see `blur`), and
//! only the maps' averages are summed in another order (see [`LANES`]).

use std::fmt;
use std::sync::OnceLock;

use rayon::prelude::*;
use ssimulacra2::{ColorPrimaries, LinearRgb, Rgb, TransferCharacteristic};

use crate::error::{Error, Result};
use crate::guard::{Frame, Samples};

use super::blur::{blur, fused};
use super::xyb;

/// Number of scales, the first at full size.
const SCALES: usize = 6;

/// Smallest width and height the metric accepts, as in the crate.
const MIN_SIDE: usize = 8;

/// Pixels of a map summed side by side, each into its own partial sum (pixel i into sum
/// i mod `LANES`, the few left over into the first), so that the additions of a sum do not
/// wait on each other and the pixels vectorize. The partial sums are added at the end.
const LANES: usize = 8;

/// Stabilizer of the SSIM ratio.
const C2: f32 = 0.0009;

/// Three planes, X, Y and B.
type Planes = [Vec<f32>; 3];

/// The source image's side of the score, computed once and reused for every candidate.
pub(crate) struct Reference {
    width: u32,
    height: u32,
    /// The source has 16-bit samples.
    sixteen: bool,
    /// The source flattened on black, then on white; only the first when the source is opaque.
    flattened: Vec<Pyramid>,
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reference")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("backgrounds", &self.flattened.len())
            .finish()
    }
}

impl Reference {
    /// Prepares `source` (gray, gray+alpha, RGB or RGBA; 8 or 16 bits; sRGB assumed, already
    /// upright). With any non-opaque pixel, both sides are judged flattened on black and on
    /// white, and the lower score counts.
    pub fn new(source: &Frame) -> Result<Self> {
        check_layout(source)?;
        if (source.width as usize) < MIN_SIDE || (source.height as usize) < MIN_SIDE {
            return Err(Error::InvalidOption(format!(
                "cannot score a {}x{} image: SSIMULACRA2 needs at least {MIN_SIDE}x{MIN_SIDE}",
                source.width, source.height
            )));
        }
        let backgrounds: &[f32] = if translucent(source) {
            &[0.0, 1.0]
        } else {
            &[0.0]
        };
        let flattened = backgrounds
            .iter()
            .map(|&background| Ok(Pyramid::new(linear_rgb(source, background)?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            width: source.width,
            height: source.height,
            sixteen: source.samples.sixteen,
            flattened,
        })
    }

    /// The SSIMULACRA2 score of `candidate` (same size, any layout) against the source. A
    /// candidate deeper than an 8-bit source (a 10-bit AVIF) is scored at 8 bits, as common
    /// decoders show it: see [`ten_bits_truncated`].
    pub fn score(&self, candidate: &Frame) -> Result<f64> {
        check_layout(candidate)?;
        let reduced;
        let candidate = if candidate.samples.sixteen && !self.sixteen {
            reduced = ten_bits_truncated(candidate)?;
            &reduced
        } else {
            candidate
        };
        if (candidate.width, candidate.height) != (self.width, self.height) {
            return Err(Error::InvalidOption(format!(
                "cannot score a {}x{} candidate against a {}x{} source",
                candidate.width, candidate.height, self.width, self.height
            )));
        }
        // An opaque source looks the same on any background, so its one pyramid serves both
        // when only the candidate has transparency.
        let backgrounds: &[f32] = if self.flattened.len() > 1 || translucent(candidate) {
            &[0.0, 1.0]
        } else {
            &[0.0]
        };
        let mut lowest = f64::INFINITY;
        for (i, &background) in backgrounds.iter().enumerate() {
            let pyramid = &self.flattened[i.min(self.flattened.len() - 1)];
            let score = pyramid.compare(linear_rgb(candidate, background)?);
            lowest = lowest.min(score);
        }
        Ok(lowest)
    }
}

/// A 16-bit frame at 8 bits the way libheif (under libvips and sharp) shows a 10-bit AVIF:
/// RGB rounded to 10 bits, then the two low bits dropped. sharp's 8-bit decode of our AVIFs
/// matched this on every sample; rounding to 8 bits instead scored screenshots up to 1.15
/// points above sharp's decode.
fn ten_bits_truncated(frame: &Frame) -> Result<Frame> {
    let mut data = crate::work::zeroed(frame.samples.data.len() / 2)?;
    for (out, v) in data.iter_mut().zip(frame.samples.data.chunks_exact(2)) {
        let v = u32::from(u16::from_be_bytes([v[0], v[1]]));
        *out = (((v * 1023 + 32767) / 65535) >> 2) as u8;
    }
    Ok(Frame::still(
        frame.width,
        frame.height,
        Samples::new(frame.samples.channels, false, data),
    ))
}

/// The source at every scale the metric visits.
struct Pyramid {
    levels: Vec<Level>,
}

/// The source's side at one scale.
struct Level {
    /// Positive XYB planes.
    xyb: Planes,
    /// Blurred XYB planes.
    mu: Planes,
    /// Blurred squares minus squared means.
    variance: Planes,
}

/// Per-scale averages: SSIM 1- and 4-norms per plane, then the edge maps' artifact 1- and
/// 4-norms and detail-lost 1- and 4-norms per plane.
struct Averages {
    ssim: [[f64; 2]; 3],
    edge: [[f64; 4]; 3],
}

impl Pyramid {
    fn new(linear: LinearRgb) -> Self {
        let levels = Scales::new(linear)
            .map(|(width, height, xyb)| Level::new(xyb, width, height))
            .collect();
        Self { levels }
    }

    /// The score of `candidate`, linear RGB of the source's size.
    fn compare(&self, candidate: LinearRgb) -> f64 {
        let averages: Vec<Averages> = self
            .levels
            .iter()
            .zip(Scales::new(candidate))
            .map(|(level, (width, height, xyb))| level.compare(&xyb, width, height))
            .collect();
        combine(&averages)
    }
}

impl Level {
    fn new(xyb: Planes, width: usize, height: usize) -> Self {
        let mut blurs = blurred(planes_and_squares(&xyb), width, height);
        let (mu, mut variance) = (three(&mut blurs), three(&mut blurs));
        for (v, m) in variance.iter_mut().zip(&mu) {
            subtract_products(v, m, m);
        }
        Self { xyb, mu, variance }
    }

    /// The candidate's side at this scale (`xyb`, same size) and the averages of both maps.
    fn compare(&self, xyb: &Planes, width: usize, height: usize) -> Averages {
        let crossed = self.xyb.iter().zip(xyb);
        let crossed = crossed.map(|(s, p)| (&s[..], Some(&p[..])));
        let mut blurs = blurred(planes_and_squares(xyb).chain(crossed), width, height);
        let (mu, squares, crossed) = (three(&mut blurs), three(&mut blurs), three(&mut blurs));
        let norms: Vec<_> = (0..3)
            .into_par_iter()
            .map(|c| {
                rayon::join(
                    || {
                        let means = [&self.mu[c][..], &mu[c]];
                        ssim_norms(means, &self.variance[c], &squares[c], &crossed[c])
                    },
                    || edge_norms(&self.xyb[c], &self.mu[c], &xyb[c], &mu[c]),
                )
            })
            .collect();
        Averages {
            ssim: std::array::from_fn(|c| norms[c].0),
            edge: std::array::from_fn(|c| norms[c].1),
        }
    }
}

/// Linear RGB at each scale, turned into positive XYB planes. A scale is visited while the one
/// before it is at least 8 pixels a side, so the last may be smaller (as in the crate).
struct Scales {
    next: Option<LinearRgb>,
    left: usize,
}

impl Scales {
    fn new(linear: LinearRgb) -> Self {
        Self {
            next: Some(linear),
            left: SCALES,
        }
    }
}

impl Iterator for Scales {
    type Item = (usize, usize, Planes);

    fn next(&mut self) -> Option<Self::Item> {
        let linear = self.next.take()?;
        self.left -= 1;
        let (width, height) = (linear.width(), linear.height());
        if self.left > 0 && width >= MIN_SIDE && height >= MIN_SIDE {
            self.next = Some(half(&linear));
        }
        Some((width, height, positive_xyb(linear)))
    }
}

/// Halves each side (rounding up) by averaging 2x2 blocks; the last row and column repeat.
fn half(linear: &LinearRgb) -> LinearRgb {
    let (width, height) = (linear.width(), linear.height());
    let (half_width, half_height) = (width.div_ceil(2), height.div_ceil(2));
    let data = linear.data();
    let average = |x: usize, y: usize| {
        let rows = [2 * y, (2 * y + 1).min(height - 1)];
        let columns = [2 * x, (2 * x + 1).min(width - 1)];
        let mut sum = [0.0f32; 3];
        for row in rows {
            for column in columns {
                for (s, p) in sum.iter_mut().zip(data[row * width + column]) {
                    *s += p;
                }
            }
        }
        sum.map(|s| s * 0.25)
    };
    let out = (0..half_height)
        .flat_map(|y| (0..half_width).map(move |x| (x, y)))
        .map(|(x, y)| average(x, y))
        .collect();
    LinearRgb::new(out, half_width, half_height).expect("the size matches the data")
}

/// XYB shifted into about 0..1 (X scaled up, B made relative to Y), as planes; converted in
/// bands of rows side by side, each written straight into its rows of the planes.
fn positive_xyb(linear: LinearRgb) -> Planes {
    const BAND: usize = 64;
    let rows = linear.width() * BAND;
    let mut planes: Planes = std::array::from_fn(|_| vec![0.0; linear.data().len()]);
    let [x, y, b] = &mut planes;
    linear
        .data()
        .par_chunks(rows)
        .zip(x.par_chunks_mut(rows))
        .zip(y.par_chunks_mut(rows))
        .zip(b.par_chunks_mut(rows))
        .for_each(|(((band, x), y), b)| xyb::positive(band, x, y, b));
    planes
}

/// The blurs of `xyb`'s planes, then of their squares, for [`blurred`].
fn planes_and_squares(xyb: &Planes) -> impl Iterator<Item = (&[f32], Option<&[f32]>)> {
    let planes = xyb.iter().map(|p| (&p[..], None));
    planes.chain(xyb.iter().map(|p| (&p[..], Some(&p[..]))))
}

/// The next three of [`blurred`]'s planes.
fn three(blurs: &mut impl Iterator<Item = Vec<f32>>) -> Planes {
    std::array::from_fn(|_| blurs.next().unwrap_or_default())
}

/// Planes blurred with the metric's Gaussian, all side by side, in order: `(a, None)` blurs
/// `a`, `(a, Some(b))` the pixel-wise product of `a` and `b`.
fn blurred<'a>(
    jobs: impl Iterator<Item = (&'a [f32], Option<&'a [f32]>)>,
    width: usize,
    height: usize,
) -> std::vec::IntoIter<Vec<f32>> {
    let jobs: Vec<_> = jobs.collect();
    let out: Vec<Vec<f32>> = jobs
        .into_par_iter()
        .map(|(a, b)| match b {
            Some(b) => blur(width, height, |i| a[i] * b[i]),
            None => blur(width, height, |i| a[i]),
        })
        .collect();
    out.into_iter()
}

/// `blurred[i] -= a[i] * b[i]`: a blurred product becomes a (co)variance.
fn subtract_products(blurred: &mut [f32], a: &[f32], b: &[f32]) {
    for ((v, x), y) in blurred.iter_mut().zip(a).zip(b) {
        *v -= x * y;
    }
}

/// 1- and 4-norms of `1 - SSIM` over one plane, with the luminance term taken as
/// `1 - (mu1 - mu2)^2` (no division by the means, as the metric defines it). The candidate's
/// variance and the covariance come as blurred products, their means' product not yet
/// subtracted.
fn ssim_norms(
    [mu1, mu2]: [&[f32]; 2],
    variance1: &[f32],
    squares2: &[f32],
    crossed: &[f32],
) -> [f64; 2] {
    let error = |mu1: f32, mu2: f32, variance1: f32, squares2: f32, crossed: f32| {
        let variance2 = squares2 - mu2 * mu2;
        let covariance = crossed - mu1 * mu2;
        let difference = mu1 - mu2;
        let luminance = fused(difference, -difference, 1.0);
        let structure = fused(2.0, covariance, C2);
        let spread = variance1 + variance2 + C2;
        (1.0 - f64::from(luminance * structure / spread)).max(0.0)
    };
    let mut sums = [[0.0f64; LANES]; 2];
    let chunks = lanes(mu1)
        .zip(lanes(mu2))
        .zip(lanes(variance1))
        .zip(lanes(squares2))
        .zip(lanes(crossed));
    for ((((m1, m2), v1), s2), c) in chunks {
        for l in 0..LANES {
            let e = error(m1[l], m2[l], v1[l], s2[l], c[l]);
            sums[0][l] += e;
            sums[1][l] += e.powi(4);
        }
    }
    let whole = mu1.len() - mu1.len() % LANES;
    for i in whole..mu1.len() {
        let e = error(mu1[i], mu2[i], variance1[i], squares2[i], crossed[i]);
        sums[0][0] += e;
        sums[1][0] += e.powi(4);
    }
    norms(sums.map(|s| s.iter().sum()), mu1.len())
}

/// Over one plane, how much more (artifact) and how much less (detail lost) local contrast the
/// candidate has than the source: 1- and 4-norms of each.
fn edge_norms(
    source: &[f32],
    source_mu: &[f32],
    candidate: &[f32],
    candidate_mu: &[f32],
) -> [f64; 4] {
    let ratio = |source: f32, source_mu: f32, candidate: f32, candidate_mu: f32| {
        (1.0 + f64::from((candidate - candidate_mu).abs()))
            / (1.0 + f64::from((source - source_mu).abs()))
            - 1.0
    };
    let mut sums = [[0.0f64; LANES]; 4];
    let add = |sums: &mut [[f64; LANES]; 4], l: usize, ratio: f64| {
        let artifact = ratio.max(0.0);
        let detail_lost = (-ratio).max(0.0);
        sums[0][l] += artifact;
        sums[1][l] += artifact.powi(4);
        sums[2][l] += detail_lost;
        sums[3][l] += detail_lost.powi(4);
    };
    let chunks = lanes(source)
        .zip(lanes(source_mu))
        .zip(lanes(candidate))
        .zip(lanes(candidate_mu));
    for (((s, sm), c), cm) in chunks {
        for l in 0..LANES {
            add(&mut sums, l, ratio(s[l], sm[l], c[l], cm[l]));
        }
    }
    let whole = source.len() - source.len() % LANES;
    for i in whole..source.len() {
        let r = ratio(source[i], source_mu[i], candidate[i], candidate_mu[i]);
        add(&mut sums, 0, r);
    }
    let sums = sums.map(|s| s.iter().sum::<f64>());
    let [a, a4] = norms([sums[0], sums[1]], source.len());
    let [d, d4] = norms([sums[2], sums[3]], source.len());
    [a, a4, d, d4]
}

/// `plane` in runs of `LANES` values (what is left over not included).
fn lanes(plane: &[f32]) -> impl Iterator<Item = &[f32; LANES]> {
    plane
        .chunks_exact(LANES)
        .map(|c| c.try_into().expect("chunks of LANES"))
}

/// The mean of the values and the 4-norm from the sum of their fourth powers.
fn norms([sum, sum4]: [f64; 2], count: usize) -> [f64; 2] {
    let per_pixel = 1.0 / count as f64;
    [per_pixel * sum, (per_pixel * sum4).sqrt().sqrt()]
}

/// The weighted sum of all averages, mapped to the 0..100 score.
fn combine(scales: &[Averages]) -> f64 {
    // The weights run by plane, then scale, then norm, then map; with fewer than six scales the
    // later planes take earlier weights, as in the reference implementation.
    let mut weights = WEIGHTS.iter();
    let mut sum = 0.0f64;
    for c in 0..3 {
        for scale in scales {
            for n in 0..2 {
                let values = [scale.ssim[c][n], scale.edge[c][n], scale.edge[c][n + 2]];
                for value in values {
                    let weight = weights.next().expect("at most 108 weights");
                    sum = weight.mul_add(value.abs(), sum);
                }
            }
        }
    }
    let sum = sum * 0.956_238_261_683_484_4;
    let sum = (6.248_496_625_763_138e-5 * sum * sum).mul_add(
        sum,
        2.326_765_642_916_932f64.mul_add(sum, -0.020_884_521_182_843_837 * sum * sum),
    );
    if sum > 0.0 {
        sum.powf(0.627_633_646_783_138_7).mul_add(-10.0, 100.0)
    } else {
        100.0
    }
}

/// Published SSIMULACRA2 weights.
#[allow(clippy::unreadable_literal)]
const WEIGHTS: [f64; 108] = [
    0.0,
    0.0007376606707406586,
    0.0,
    0.0,
    0.0007793481682867309,
    0.0,
    0.0,
    0.0004371155730107379,
    0.0,
    1.1041726426657346,
    0.00066284834129271,
    0.00015231632783718752,
    0.0,
    0.0016406437456599754,
    0.0,
    1.8422455520539298,
    11.441172603757666,
    0.0,
    0.0007989109436015163,
    0.000176816438078653,
    0.0,
    1.8787594979546387,
    10.94906990605142,
    0.0,
    0.0007289346991508072,
    0.9677937080626833,
    0.0,
    0.00014003424285435884,
    0.9981766977854967,
    0.00031949755934435053,
    0.0004550992113792063,
    0.0,
    0.0,
    0.0013648766163243398,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    7.466890328078848,
    0.0,
    17.445833984131262,
    0.0006235601634041466,
    0.0,
    0.0,
    6.683678146179332,
    0.00037724407979611296,
    1.027889937768264,
    225.20515300849274,
    0.0,
    0.0,
    19.213238186143016,
    0.0011401524586618361,
    0.001237755635509985,
    176.39317598450694,
    0.0,
    0.0,
    24.43300999870476,
    0.28520802612117757,
    0.0004485436923833408,
    0.0,
    0.0,
    0.0,
    34.77906344483772,
    44.835625328877896,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0008680556573291698,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0005313191874358747,
    0.0,
    0.00016533814161379112,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0004179171803251336,
    0.0017290828234722833,
    0.0,
    0.0020827005846636437,
    0.0,
    0.0,
    8.826982764996862,
    23.19243343998926,
    0.0,
    95.1080498811086,
    0.9863978034400682,
    0.9834382792465353,
    0.0012286405048278493,
    171.2667255897307,
    0.9807858872435379,
    0.0,
    0.0,
    0.0,
    0.0005130064588990679,
    0.0,
    0.00010854057858411537,
];

/// Errors unless the samples fit the frame's size and channel count.
fn check_layout(frame: &Frame) -> Result<()> {
    let samples = &frame.samples;
    if !(1..=4).contains(&samples.channels) {
        return Err(Error::InvalidOption(format!(
            "cannot score pixels with {} channels",
            samples.channels
        )));
    }
    let bytes = (frame.width as usize)
        .checked_mul(frame.height as usize)
        .and_then(|n| n.checked_mul(usize::from(samples.channels)))
        .and_then(|n| n.checked_mul(if samples.sixteen { 2 } else { 1 }));
    if bytes != Some(samples.data.len()) {
        return Err(Error::InvalidOption(format!(
            "{} bytes of samples do not fit a {}x{} frame",
            samples.data.len(),
            frame.width,
            frame.height
        )));
    }
    Ok(())
}

/// One sample as a float in 0..1: 8-bit, or 16-bit big-endian.
fn normalized(sample: &[u8]) -> f32 {
    match *sample {
        [hi, lo] => f32::from(u16::from_be_bytes([hi, lo])) / 65535.0,
        [v] => f32::from(v) / 255.0,
        _ => 0.0,
    }
}

/// True when some pixel is not fully opaque.
fn translucent(frame: &Frame) -> bool {
    let samples = &frame.samples;
    let channels = usize::from(samples.channels);
    if channels % 2 == 1 {
        return false;
    }
    let width = if samples.sixteen { 2 } else { 1 };
    samples.data.chunks_exact(channels * width).any(|pixel| {
        pixel[(channels - 1) * width..]
            .iter()
            .any(|&b| b != u8::MAX)
    })
}

/// The frame as linear RGB, flattened on a gray `background` (0 black, 1 white) in sRGB-encoded
/// values and cut to 8 bits, as libvips flattens (sharp's `flatten`, the independent check).
fn linear_rgb(frame: &Frame, background: f32) -> Result<LinearRgb> {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let fail = |e: &dyn fmt::Display| Error::InvalidOption(format!("cannot score: {e}"));
    if !translucent(frame) {
        // Opaque: nothing to flatten, so each sample maps through a table.
        let table = linear_table(frame.samples.sixteen);
        let data = rgba(frame, |s| table[level(s)]).map(|(c, _)| c).collect();
        return LinearRgb::new(data, width, height).map_err(|e| fail(&e));
    }
    let encoded = rgba(frame, normalized)
        .map(|(color, alpha)| color.map(|c| composite(c, alpha, background)))
        .collect();
    let rgb = Rgb::new(
        encoded,
        width,
        height,
        TransferCharacteristic::SRGB,
        ColorPrimaries::BT709,
    )
    .map_err(|e| fail(&e))?;
    LinearRgb::try_from(rgb).map_err(|e| fail(&e))
}

/// One sRGB-encoded sample over `background`, truncated to 8 bits like libvips. The rounding
/// matters: on a dark glow, truncating instead of rounding moved the score by 2.4 points.
fn composite(c: f32, alpha: f32, background: f32) -> f32 {
    ((c * alpha + background * (1.0 - alpha)) * 255.0 + 1e-3).floor() / 255.0
}

/// The frame's pixels as colour and alpha (1 when absent), each sample mapped by `f`.
fn rgba<'a>(
    frame: &'a Frame,
    f: impl Fn(&[u8]) -> f32 + 'a,
) -> impl Iterator<Item = ([f32; 3], f32)> + 'a {
    let channels = usize::from(frame.samples.channels);
    let unit = if frame.samples.sixteen { 2 } else { 1 };
    frame
        .samples
        .data
        .chunks_exact(channels * unit)
        .map(move |pixel| {
            let mut v = [0.0f32; 4];
            for (slot, sample) in v.iter_mut().zip(pixel.chunks_exact(unit)) {
                *slot = f(sample);
            }
            match channels {
                1 => ([v[0]; 3], 1.0),
                2 => ([v[0]; 3], v[1]),
                3 => ([v[0], v[1], v[2]], 1.0),
                _ => ([v[0], v[1], v[2]], v[3]),
            }
        })
}

/// One sample's raw level: 8-bit, or 16-bit big-endian.
fn level(sample: &[u8]) -> usize {
    match *sample {
        [hi, lo] => usize::from(u16::from_be_bytes([hi, lo])),
        [v] => usize::from(v),
        _ => 0,
    }
}

/// Linear values of every 8-bit or 16-bit sRGB level, from the crate's own transfer function.
fn linear_table(sixteen: bool) -> &'static [f32] {
    static EIGHT: OnceLock<Vec<f32>> = OnceLock::new();
    static SIXTEEN: OnceLock<Vec<f32>> = OnceLock::new();
    let (cell, levels) = if sixteen {
        (&SIXTEEN, 65536)
    } else {
        (&EIGHT, 256)
    };
    cell.get_or_init(|| {
        let top = (levels - 1) as f32;
        let encoded = (0..levels).map(|v| [v as f32 / top; 3]).collect();
        Rgb::new(
            encoded,
            levels,
            1,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .ok()
        .and_then(|rgb| LinearRgb::try_from(rgb).ok())
        .map(|linear| linear.data().iter().map(|p| p[0]).collect())
        .expect("sRGB to linear is supported")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift).
    struct Noise(u32);

    impl Noise {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }

        /// A value in -amplitude..=amplitude.
        fn around(&mut self, amplitude: i32) -> i32 {
            (self.next() % (2 * amplitude as u32 + 1)) as i32 - amplitude
        }
    }

    fn frame(width: u32, height: u32, channels: u8, pixel: impl Fn(u32, u32) -> Vec<u8>) -> Frame {
        let data = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| pixel(x, y))
            .collect();
        Frame::still(width, height, Samples::new(channels, false, data))
    }

    /// A gradient with waves and a little noise, like a photo.
    fn photo(width: u32, height: u32, seed: u32) -> Frame {
        let noise = std::cell::RefCell::new(Noise(seed));
        frame(width, height, 3, |x, y| {
            let wave = ((x as f32 * 0.3).sin() * (y as f32 * 0.2).cos() * 60.0) as i32;
            let base = [
                (x * 255 / width) as i32,
                (y * 255 / height) as i32,
                128 + wave,
            ];
            base.iter()
                .map(|&v| (v + noise.borrow_mut().around(6)).clamp(0, 255) as u8)
                .collect()
        })
    }

    fn noise(width: u32, height: u32, seed: u32) -> Frame {
        let mut noise = Noise(seed);
        let data = (0..width * height * 3)
            .map(|_| noise.next() as u8)
            .collect();
        Frame::still(width, height, Samples::new(3, false, data))
    }

    /// Applies `f` to each sample, given its pixel position and channel.
    fn map_samples(source: &Frame, f: impl Fn(usize, usize, usize) -> u8) -> Frame {
        let c = usize::from(source.samples.channels);
        let w = source.width as usize;
        let data = (0..source.samples.data.len())
            .map(|i| f((i / c) % w, i / c / w, i % c))
            .collect();
        Frame::still(
            source.width,
            source.height,
            Samples::new(source.samples.channels, false, data),
        )
    }

    fn sample(source: &Frame, x: usize, y: usize, k: usize) -> u8 {
        let c = usize::from(source.samples.channels);
        source.samples.data[(y * source.width as usize + x) * c + k]
    }

    fn noisy(source: &Frame, amplitude: i32, seed: u32) -> Frame {
        let noise = std::cell::RefCell::new(Noise(seed));
        map_samples(source, |x, y, k| {
            let v = i32::from(sample(source, x, y, k)) + noise.borrow_mut().around(amplitude);
            v.clamp(0, 255) as u8
        })
    }

    /// A 3x3 box blur, edges clamped.
    fn blurred(source: &Frame) -> Frame {
        let (w, h) = (source.width as usize, source.height as usize);
        map_samples(source, |x, y, k| {
            let mut sum = 0u32;
            for dy in 0..3 {
                for dx in 0..3 {
                    let sx = (x + dx).saturating_sub(1).min(w - 1);
                    let sy = (y + dy).saturating_sub(1).min(h - 1);
                    sum += u32::from(sample(source, sx, sy, k));
                }
            }
            (sum / 9) as u8
        })
    }

    /// Each 8x8 block replaced by its mean, as a very coarse JPEG would.
    fn blocky(source: &Frame) -> Frame {
        let (w, h) = (source.width as usize, source.height as usize);
        map_samples(source, |x, y, k| {
            let (bx, by) = (x / 8 * 8, y / 8 * 8);
            let (mut sum, mut count) = (0u32, 0u32);
            for sy in by..(by + 8).min(h) {
                for sx in bx..(bx + 8).min(w) {
                    sum += u32::from(sample(source, sx, sy, k));
                    count += 1;
                }
            }
            (sum / count) as u8
        })
    }

    /// The same pixels with 16-bit samples.
    fn sixteen(source: &Frame) -> Frame {
        let data = source
            .samples
            .data
            .iter()
            .flat_map(|&v| (u16::from(v) * 257).to_be_bytes())
            .collect();
        Frame::still(
            source.width,
            source.height,
            Samples::new(source.samples.channels, true, data),
        )
    }

    /// RGBA from RGB with the given alpha per pixel.
    fn with_alpha(source: &Frame, alpha: impl Fn(usize, usize) -> u8) -> Frame {
        frame(source.width, source.height, 4, |x, y| {
            let (x, y) = (x as usize, y as usize);
            let mut p: Vec<u8> = (0..3).map(|k| sample(source, x, y, k)).collect();
            p.push(alpha(x, y));
            p
        })
    }

    fn score(source: &Frame, candidate: &Frame) -> f64 {
        Reference::new(source)
            .expect("source prepared")
            .score(candidate)
            .expect("scored")
    }

    /// Linear RGB converted by the crate with no lookup table; a translucent frame is
    /// flattened first, as `linear_rgb` does.
    fn crate_linear(frame: &Frame, background: f32) -> LinearRgb {
        let flatten = translucent(frame);
        let encoded = rgba(frame, normalized)
            .map(|(color, alpha)| {
                color.map(|c| {
                    if flatten {
                        composite(c, alpha, background)
                    } else {
                        c
                    }
                })
            })
            .collect();
        let (width, height) = (frame.width as usize, frame.height as usize);
        let rgb = Rgb::new(
            encoded,
            width,
            height,
            TransferCharacteristic::SRGB,
            ColorPrimaries::BT709,
        )
        .expect("sizes match");
        LinearRgb::try_from(rgb).expect("converted")
    }

    /// The crate's own score, the lower over both backgrounds when either side is translucent.
    fn crate_score(source: &Frame, candidate: &Frame) -> f64 {
        let backgrounds: &[f32] = if translucent(source) || translucent(candidate) {
            &[0.0, 1.0]
        } else {
            &[0.0]
        };
        backgrounds
            .iter()
            .map(|&bg| {
                let (a, b) = (crate_linear(source, bg), crate_linear(candidate, bg));
                ssimulacra2::compute_frame_ssimulacra2(a, b).expect("crate scored")
            })
            .fold(f64::INFINITY, f64::min)
    }

    fn assert_agrees(source: &Frame, candidate: &Frame) {
        let ours = score(source, candidate);
        let theirs = crate_score(source, candidate);
        assert!(
            (ours - theirs).abs() < 1e-6,
            "{}x{}: ours {ours}, crate {theirs}",
            source.width,
            source.height
        );
    }

    /// A 16-bit candidate is shown at 10 bits with the low two dropped: any 10-bit value
    /// from 4v to 4v + 3 shows as the source's v, and one more step does not.
    #[test]
    fn a_deeper_candidate_is_scored_as_ten_bits_truncated() {
        let source = photo(64, 48, 2);
        let deeper = |extra: u32| {
            let data = source
                .samples
                .data
                .iter()
                .enumerate()
                .flat_map(|(i, &v)| {
                    let ten = (4 * u32::from(v) + (i as u32 % 4) * extra).min(1023);
                    (((ten * 65535 + 511) / 1023) as u16).to_be_bytes()
                })
                .collect();
            Frame::still(64, 48, Samples::new(3, true, data))
        };
        assert_eq!(score(&source, &deeper(1)), 100.0);
        assert!(score(&source, &deeper(2)) < 100.0);
    }

    #[test]
    fn identical_images_score_100() {
        let source = photo(64, 48, 1);
        assert_eq!(score(&source, &source), 100.0);
        assert_eq!(crate_score(&source, &source), 100.0);
        let translucent = with_alpha(&source, |x, _| (x * 4) as u8);
        assert_eq!(score(&translucent, &translucent), 100.0);
    }

    #[test]
    fn more_distortion_scores_lower() {
        let source = photo(64, 48, 2);
        let slight = score(&source, &noisy(&source, 3, 5));
        let strong = score(&source, &noisy(&source, 30, 5));
        let blocks = score(&source, &blocky(&source));
        assert!(slight < 100.0, "{slight}");
        assert!(strong < slight, "{strong} vs {slight}");
        assert!(blocks < 100.0, "{blocks}");
    }

    #[test]
    fn agrees_with_the_crate() {
        let gradient = photo(64, 48, 3);
        assert_agrees(&gradient, &noisy(&gradient, 10, 7));
        let random = noise(40, 40, 4);
        assert_agrees(&random, &blurred(&random));
        // Big enough for all six scales.
        let large = photo(150, 130, 5);
        assert_agrees(&large, &blocky(&large));
        assert_agrees(&large, &blurred(&noisy(&large, 20, 8)));
        let tiny = photo(9, 9, 6);
        assert_agrees(&tiny, &noisy(&tiny, 20, 9));
        let odd = photo(31, 17, 7);
        assert_agrees(&odd, &blurred(&odd));
        assert_agrees(&odd, &blocky(&odd));
        let exact = photo(8, 8, 8);
        assert_agrees(&exact, &noisy(&exact, 20, 10));
    }

    #[test]
    fn agrees_with_the_crate_on_alpha() {
        let source = with_alpha(&photo(40, 30, 11), |x, y| ((x + y) * 5) as u8);
        let candidate = with_alpha(&noisy(&photo(40, 30, 11), 8, 12), |x, y| {
            ((x + y) * 5) as u8
        });
        assert_agrees(&source, &candidate);
    }

    #[test]
    fn colour_under_full_transparency_does_not_count() {
        let base = photo(32, 32, 13);
        let hole = |x: usize, _: usize| if x < 16 { 0 } else { 255 };
        let source = with_alpha(&base, hole);
        let candidate = with_alpha(&noise(32, 32, 14), hole);
        let mixed = map_samples(&source, |x, y, k| {
            if x < 16 {
                sample(&candidate, x, y, k)
            } else {
                sample(&source, x, y, k)
            }
        });
        assert_eq!(score(&source, &mixed), 100.0);
    }

    #[test]
    fn changed_alpha_scores_lower_and_takes_the_lower_background() {
        let base = photo(32, 32, 15);
        let source = with_alpha(&base, |x, _| if x < 16 { 128 } else { 255 });
        let candidate = with_alpha(&base, |x, _| if x < 16 { 200 } else { 255 });
        let ours = score(&source, &candidate);
        assert!(ours < 100.0, "{ours}");
        let on = |bg: f32| {
            let (a, b) = (crate_linear(&source, bg), crate_linear(&candidate, bg));
            ssimulacra2::compute_frame_ssimulacra2(a, b).expect("crate scored")
        };
        let (black, white) = (on(0.0), on(1.0));
        assert!(black != white, "both backgrounds give {black}");
        assert!(
            (ours - black.min(white)).abs() < 1e-6,
            "{ours} vs {black}, {white}"
        );
    }

    #[test]
    fn opaque_source_against_translucent_candidate() {
        let source = photo(32, 32, 16);
        let candidate = with_alpha(&source, |x, _| if x < 8 { 100 } else { 255 });
        let opaque = with_alpha(&source, |_, _| 255);
        assert!(score(&source, &candidate) < 90.0);
        assert_eq!(score(&source, &opaque), 100.0);
        assert_agrees(&source, &candidate);
    }

    #[test]
    fn layouts_do_not_matter() {
        let source = with_alpha(&photo(24, 20, 17), |x, _| (x * 10) as u8);
        let candidate = with_alpha(&noisy(&photo(24, 20, 17), 9, 18), |x, _| (x * 10) as u8);
        let eight = score(&source, &candidate);
        assert_eq!(score(&sixteen(&source), &candidate), eight);
        assert_eq!(score(&source, &sixteen(&candidate)), eight);

        // Gray and gray+alpha against the same values in RGB and RGBA.
        let gray = map_samples(&frame(24, 20, 1, |_, _| vec![0]), |x, y, _| {
            (x * 9 + y) as u8
        });
        let rgb = frame(24, 20, 3, |x, y| vec![(x * 9 + y) as u8; 3]);
        let noisy_gray = noisy(&gray, 12, 19);
        let noisy_rgb = frame(24, 20, 3, |x, y| {
            vec![sample(&noisy_gray, x as usize, y as usize, 0); 3]
        });
        let expected = score(&rgb, &noisy_rgb);
        assert!(expected < 100.0);
        assert_eq!(score(&gray, &noisy_rgb), expected);
        assert_eq!(score(&rgb, &sixteen(&noisy_gray)), expected);
        let gray_alpha = frame(24, 20, 2, |x, y| vec![(x * 9 + y) as u8, 255]);
        assert_eq!(score(&gray_alpha, &noisy_gray), expected);
    }

    #[test]
    fn lookup_tables_match_the_conversion() {
        let ramp = frame(256, 1, 1, |x, _| vec![x as u8]);
        let wide = Frame::still(
            65536,
            1,
            Samples::new(1, true, (0..=u16::MAX).flat_map(u16::to_be_bytes).collect()),
        );
        for frame in [ramp, wide] {
            let table = linear_rgb(&frame, 0.0).expect("converted");
            assert_eq!(table.data(), crate_linear(&frame, 0.0).data());
        }
    }

    #[test]
    fn bad_inputs_are_errors() {
        let source = photo(16, 16, 20);
        let reference = Reference::new(&source).expect("prepared");
        assert!(reference.score(&photo(16, 15, 20)).is_err());
        let mut short = source.clone();
        short.samples.data.pop();
        assert!(reference.score(&short).is_err());
        assert!(Reference::new(&short).is_err());
        let mut five = source.clone();
        five.samples.channels = 5;
        assert!(reference.score(&five).is_err());

        // Like the crate, images under 8 pixels a side are refused.
        let small = photo(7, 12, 21);
        assert!(Reference::new(&small).is_err());
        let (a, b) = (crate_linear(&small, 0.0), crate_linear(&small, 0.0));
        assert!(ssimulacra2::compute_frame_ssimulacra2(a, b).is_err());
        assert!(Reference::new(&photo(12, 0, 22)).is_err());
    }

    /// Timing against the crate: `cargo test --release -p picopic-engine --lib lossy::score --
    /// --ignored --nocapture`.
    #[test]
    #[ignore = "timing, run by hand in release"]
    fn timing() {
        let source = photo(1200, 850, 23);
        let candidate = blocky(&noisy(&source, 10, 24));
        let runs = 5;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            crate_score(&source, &candidate);
        }
        let theirs = start.elapsed() / runs;
        let start = std::time::Instant::now();
        let reference = Reference::new(&source).expect("prepared");
        let prepare = start.elapsed();
        let start = std::time::Instant::now();
        for _ in 0..runs {
            reference.score(&candidate).expect("scored");
        }
        let ours = start.elapsed() / runs;
        eprintln!(
            "1.02 MP: crate {theirs:?} per score; prepare {prepare:?}, then {ours:?} per score"
        );
    }
}
