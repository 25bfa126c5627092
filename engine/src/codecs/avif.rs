//! AVIF: the ISO-BMFF boxes read for image and track sizes. Re-encoding AV1 is lossy, so AVIF
//! files pass through after the header checks; stills can be decoded to the pixels they display
//! (rav1d, then YCbCr to RGB) for the lossy mode.

use super::av1::{self, Plane, Planes};
use super::avif_items::Primary;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::limits::{Header, Limits};

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Avif, reason)
}

pub(super) fn be32(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Sizes found in the boxes.
#[derive(Default)]
struct Found {
    width: u32,
    height: u32,
    frames: u64,
}

/// Walks boxes, descending into the containers that hold sizes.
fn walk(data: &[u8], depth: u32, found: &mut Found) -> Result<()> {
    if depth > 8 {
        return Err(malformed("boxes nested too deep"));
    }
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size32 = be32(data, pos).unwrap_or(0);
        let kind = &data[pos + 4..pos + 8];
        let (size, head) = match size32 {
            0 => (data.len() - pos, 8),
            1 => {
                let large = data
                    .get(pos + 8..pos + 16)
                    .map(|b| u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                    .ok_or_else(|| malformed("truncated box"))?;
                (usize::try_from(large).unwrap_or(usize::MAX), 16)
            }
            n => (n as usize, 8),
        };
        let body = data
            .get(pos + head..pos.saturating_add(size))
            .filter(|_| size >= head)
            .ok_or_else(|| malformed("a box runs past its parent"))?;
        match kind {
            b"meta" => walk(body.get(4..).unwrap_or_default(), depth + 1, found)?,
            b"iprp" | b"ipco" | b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" => {
                walk(body, depth + 1, found)?;
            }
            b"ispe" => {
                let (w, h) = (be32(body, 4), be32(body, 8));
                let (w, h) = w.zip(h).ok_or_else(|| malformed("short ispe box"))?;
                found.width = found.width.max(w);
                found.height = found.height.max(h);
            }
            b"tkhd" => {
                // Version 1 has 64-bit times: width and height sit 12 bytes later.
                let at = if body.first() == Some(&1) { 88 } else { 76 };
                if let Some((w, h)) = be32(body, at).zip(be32(body, at + 4)) {
                    found.width = found.width.max(w >> 16);
                    found.height = found.height.max(h >> 16);
                }
            }
            b"stsz" => found.frames = found.frames.max(be32(body, 8).unwrap_or(0).into()),
            _ => {}
        }
        pos = pos.saturating_add(size);
    }
    Ok(())
}

pub(super) fn probe(bytes: &[u8]) -> Result<Header> {
    let mut found = Found::default();
    walk(bytes, 0, &mut found)?;
    if found.width == 0 || found.height == 0 {
        return Err(malformed("no image size (ispe) found"));
    }
    let mut header = Header::still(found.width, found.height);
    if found.frames > 1 {
        header.frames = found.frames;
        header.total_pixels = header.pixels().saturating_mul(found.frames);
    }
    Ok(header)
}

/// A still AVIF decoded (AV1 by rav1d), colour converted to RGB, alpha merged when the file
/// has an alpha item (colour premultiplied by it divided back), cropped as `clap` asks: 8-bit samples for 8-bit AV1, 16-bit (scaled to the full 16-bit range)
/// for 10 and 12-bit. Chroma is upsampled bilinearly, chroma samples taken as centred.
pub(crate) fn decode_display(bytes: &[u8], limits: &Limits) -> Result<Frame> {
    let avif = parse(|| avif_parse::read_avif(&mut &bytes[..]))?;
    let colour = decode_item(&avif.primary_item, limits)?;
    let alpha = match avif.alpha_item.as_deref() {
        Some(item) => Some(decode_item(item, limits)?),
        None => None,
    };
    let (width, height) = colour.size();
    if let Some((w, h)) = alpha.as_ref().map(av1::Picture::size)
        && (w, h) != (width, height)
    {
        return Err(malformed(format!(
            "alpha is {w}x{h} but the image is {width}x{height}"
        )));
    }
    let planes = colour.planes()?;
    let alpha_planes = alpha.as_ref().map(av1::Picture::planes).transpose()?;
    let primary = Primary::of(bytes);
    // The container's nclx colour box overrides the AV1 sequence header.
    let (code, full_range) = primary
        .as_ref()
        .and_then(Primary::nclx)
        .map_or((planes.matrix, planes.full_range), |(_, _, m, f)| (m, f));
    // A monochrome picture has no matrix to apply.
    let matrix = match planes.chroma {
        Some(_) => Matrix::from_code(code)?,
        None => Matrix::Gbr,
    };
    let sixteen = planes.depth > 8 || alpha_planes.as_ref().is_some_and(|a| a.depth > 8);
    let with_alpha = alpha_planes.as_ref().map(|a| (a, avif.premultiplied_alpha));
    let data = to_rgb(&planes, matrix, full_range, with_alpha, sixteen)?;
    let channels = if alpha.is_some() { 4 } else { 3 };
    let frame = Frame::still(width, height, Samples::new(channels, sixteen, data));
    match primary.filter(|p| p.get(b"clap").is_some()) {
        Some(p) => cropped(frame, p.crop().ok_or_else(|| malformed(BAD_CROP))?),
        None => Ok(frame),
    }
}

const BAD_CROP: &str = "its crop (clap) is not whole pixels inside the picture";

/// The part (x, y, width, height) of `frame`.
fn cropped(frame: Frame, (x, y, w, h): (u32, u32, u32, u32)) -> Result<Frame> {
    if (x, y, w, h) == (0, 0, frame.width, frame.height) {
        return Ok(frame);
    }
    if x + w > frame.width || y + h > frame.height {
        return Err(malformed(BAD_CROP));
    }
    let size = usize::from(frame.samples.channels) * if frame.samples.sixteen { 2 } else { 1 };
    let row = frame.width as usize * size;
    let (from, len) = (x as usize * size, w as usize * size);
    let data = frame
        .samples
        .data
        .chunks_exact(row)
        .skip(y as usize)
        .take(h as usize)
        .flat_map(|r| &r[from..from + len])
        .copied()
        .collect();
    let samples = Samples::new(frame.samples.channels, frame.samples.sixteen, data);
    Ok(Frame::still(w, h, samples))
}

/// The ICC profile of the primary item's `colr` property; without one, Display P3's when
/// its code points name it (see [`code_points`], [`crate::colour::coded`]).
pub(crate) fn icc(bytes: &[u8]) -> Option<Vec<u8>> {
    let primary = Primary::of(bytes)?;
    if let Some(profile) = primary.profile() {
        return Some(profile.to_vec());
    }
    let (primaries, transfer, ..) = code_points(bytes, &primary)?;
    crate::colour::coded(primaries, transfer).ok().flatten()
}

/// The colour the primary item is coded in (primaries, transfer, matrix, full range): its
/// `nclx` property's, else its AV1 sequence header's, as the AVIF specification orders them.
fn code_points(bytes: &[u8], primary: &Primary) -> Option<(u16, u16, u16, bool)> {
    primary.nclx().or_else(|| {
        let avif = parse(|| avif_parse::read_avif(&mut &bytes[..])).ok()?;
        av1_metadata(&avif.primary_item).ok()?;
        av1::sequence_colour(&avif.primary_item)
    })
}

/// The EXIF orientation that turns the decoded picture as `irot` and `imir` ask.
pub(crate) fn orientation(bytes: &[u8]) -> u16 {
    Primary::of(bytes).map_or(1, |p| p.orientation())
}

/// Why [`decode_display`] cannot give the pixels a viewer shows, when it cannot: a primary
/// item that is not one coded image (a grid of tiles, an overlay), a crop that is not whole
/// pixels, a layered picture shown at another operating point or layer than all of it,
/// colour other than sRGB's or Display P3's (primaries and transfer) without an ICC
/// profile, or a YCbCr matrix it does not convert.
pub(crate) fn not_shown(bytes: &[u8]) -> Option<String> {
    let primary = Primary::of(bytes)?;
    if let Some(kind) = primary.kind.filter(|k| k != b"av01") {
        return Some(format!(
            "its primary item is a '{}', not one coded image",
            String::from_utf8_lossy(&kind)
        ));
    }
    if primary.get(b"clap").is_some() && primary.crop().is_none() {
        return Some(BAD_CROP.into());
    }
    // rav1d decodes every layer of a layered picture; these ask a viewer to show fewer.
    let selects = |kind, all: &[u8]| primary.get(kind).is_some_and(|b| !b.starts_with(all));
    if selects(b"a1op", &[0]) || selects(b"lsel", &[0xff, 0xff]) {
        return Some("it selects an operating point or a layer (a1op, lsel)".into());
    }
    let (primaries, transfer, matrix, _) = code_points(bytes, &primary)?;
    if Matrix::from_code(matrix).is_err() {
        return Some(format!(
            "its matrix coefficients {matrix} are not converted here"
        ));
    }
    primary
        .profile()
        .is_none()
        .then(|| crate::colour::coded(primaries, transfer).err())
        .flatten()
}

/// Runs an avif-parse reader, whose assertions may panic on malformed input.
fn parse<T>(read: impl FnOnce() -> avif_parse::Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
        Ok(result) => result.map_err(malformed),
        Err(_) => Err(malformed("malformed boxes (the AVIF parser gave up)")),
    }
}

/// avif-parse's reading of an AV1 item's sequence header. rav1d reads an item only after
/// this succeeds: its parser overflows on a truncated header in debug builds (the fuzz
/// build among them), and the panic cannot unwind out of its C API.
fn av1_metadata(item: &[u8]) -> Result<avif_parse::AV1Metadata> {
    parse(|| avif_parse::AV1Metadata::parse_av1_bitstream(item))
}

/// One AV1 item decoded, its size checked against the limits before and after.
fn decode_item(item: &[u8], limits: &Limits) -> Result<av1::Picture> {
    let meta = av1_metadata(item)?;
    let (w, h) = (meta.max_frame_width.get(), meta.max_frame_height.get());
    limits.check(&Header::still(w, h))?;
    let picture = av1::decode(item, limits.max_pixels)?;
    let (w, h) = picture.size();
    if w == 0 || h == 0 {
        return Err(malformed("empty AV1 picture"));
    }
    limits.check(&Header::still(w, h))?;
    Ok(picture)
}

/// How the colour planes map to RGB.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Matrix {
    /// Identity: Y holds green, Cb blue, Cr red.
    Gbr,
    /// YCbCr with the luma weights of red and blue.
    YCbCr { kr: f32, kb: f32 },
}

impl Matrix {
    /// From ITU-T H.273 matrix coefficients; unspecified (2) is taken as BT.601.
    fn from_code(code: u16) -> Result<Self> {
        Ok(match code {
            0 => Self::Gbr,
            1 => Self::YCbCr {
                kr: 0.2126,
                kb: 0.0722,
            },
            2 | 5 | 6 => Self::YCbCr {
                kr: 0.299,
                kb: 0.114,
            },
            9 => Self::YCbCr {
                kr: 0.2627,
                kb: 0.0593,
            },
            n => return Err(malformed(format!("matrix coefficients {n} not supported"))),
        })
    }
}

/// Maps code values to 0..=1 (luma, RGB, alpha) or -0.5..=0.5 (chroma).
#[derive(Debug, Clone, Copy)]
struct Scale {
    offset: f32,
    factor: f32,
}

impl Scale {
    fn new(depth: u8, full_range: bool, chroma: bool) -> Self {
        let max = f32::from((1u16 << depth) - 1);
        let unit = f32::from(1u16 << (depth - 8));
        let (offset, range) = match (full_range, chroma) {
            (true, false) => (0.0, max),
            (true, true) => (f32::from(1u16 << (depth - 1)), max),
            (false, false) => (16.0 * unit, 219.0 * unit),
            (false, true) => (128.0 * unit, 224.0 * unit),
        };
        Self {
            offset,
            factor: 1.0 / range,
        }
    }

    fn apply(self, value: f32) -> f32 {
        (value - self.offset) * self.factor
    }
}

/// The two chroma samples nearest to luma position `i` on one axis, nearer first.
fn taps(i: usize, halved: bool, len: usize) -> (usize, usize) {
    if !halved {
        return (i, i);
    }
    let near = (i / 2).min(len - 1);
    let far = if i.is_multiple_of(2) {
        near.saturating_sub(1)
    } else {
        (near + 1).min(len - 1)
    };
    (near, far)
}

/// Chroma at luma position (x, y), weighting the nearer sample 3:1 on each halved axis.
fn chroma_at(plane: &Plane<'_>, x: usize, y: usize, (sx, sy): (bool, bool)) -> f32 {
    if !sx && !sy {
        return f32::from(plane.at(x, y));
    }
    let (x0, x1) = taps(x, sx, plane.width);
    let (y0, y1) = taps(y, sy, plane.height);
    let row = |y| 3.0 * f32::from(plane.at(x0, y)) + f32::from(plane.at(x1, y));
    (3.0 * row(y0) + row(y1)) / 16.0
}

/// Interleaved RGB, or RGBA with `alpha` (whose luma is the alpha; with true when the colour
/// is premultiplied by it, which is undone), as 8-bit samples or as 16-bit big-endian ones
/// when `sixteen`.
fn to_rgb(
    colour: &Planes<'_>,
    matrix: Matrix,
    full_range: bool,
    alpha: Option<(&Planes<'_>, bool)>,
    sixteen: bool,
) -> Result<Vec<u8>> {
    let (w, h) = (colour.luma.width, colour.luma.height);
    let channels = if alpha.is_some() { 4 } else { 3 };
    let mut out = crate::work::room_for(w * h * channels * if sixteen { 2 } else { 1 })?;
    let luma = Scale::new(colour.depth, full_range, false);
    let chroma = Scale::new(colour.depth, full_range, matrix != Matrix::Gbr);
    let alpha = alpha.map(|(a, premultiplied)| {
        (
            a.luma,
            Scale::new(a.depth, a.full_range, false),
            premultiplied,
        )
    });
    let top = if sixteen { 65535.0 } else { 255.0 };
    let mut put = |v: f32| {
        let q = (v.clamp(0.0, 1.0) * top).round() as u16;
        if sixteen {
            out.extend_from_slice(&q.to_be_bytes());
        } else {
            out.push(q as u8);
        }
    };
    for y in 0..h {
        for x in 0..w {
            let l = luma.apply(colour.luma.at(x, y).into());
            let rgb = match &colour.chroma {
                None => [l; 3],
                Some([cb, cr]) => {
                    let cb = chroma.apply(chroma_at(cb, x, y, colour.subsampling));
                    let cr = chroma.apply(chroma_at(cr, x, y, colour.subsampling));
                    match matrix {
                        Matrix::Gbr => [cr, l, cb],
                        Matrix::YCbCr { kr, kb } => {
                            let r = l + 2.0 * (1.0 - kr) * cr;
                            let b = l + 2.0 * (1.0 - kb) * cb;
                            [r, (l - kr * r - kb * b) / (1.0 - kr - kb), b]
                        }
                    }
                }
            };
            let a = alpha.map(|(plane, scale, premultiplied)| {
                (scale.apply(plane.at(x, y).into()), premultiplied)
            });
            match a {
                Some((a, true)) if a > 0.0 => rgb.map(|c| c / a),
                Some((_, true)) => [0.0; 3],
                _ => rgb,
            }
            .into_iter()
            .for_each(&mut put);
            if let Some((a, _)) = a {
                put(a);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use av1::Texels;
    use ravif::{BitDepth, Encoder, Img, MatrixCoefficients, PixelRange, RGBA8};

    fn encoder(depth: BitDepth) -> Encoder<'static> {
        Encoder::new()
            .with_quality(90.)
            .with_alpha_quality(90.)
            .with_speed(10)
            .with_num_threads(Some(1))
            .with_bit_depth(depth)
    }

    fn encode(pixels: &[RGBA8], w: usize, h: usize, depth: BitDepth) -> Vec<u8> {
        encoder(depth)
            .encode_rgba(Img::new(pixels, w, h))
            .unwrap()
            .avif_file
    }

    /// Sample `i` of a frame on the 8-bit scale.
    fn sample(frame: &Frame, i: usize) -> f64 {
        let s = &frame.samples;
        if s.sixteen {
            f64::from(u16::from_be_bytes([s.data[2 * i], s.data[2 * i + 1]])) / 257.0
        } else {
            f64::from(s.data[i])
        }
    }

    /// Largest and mean absolute difference from `expected` (channels as in the frame).
    fn errors(frame: &Frame, expected: &[u8]) -> (f64, f64) {
        let s = &frame.samples;
        let len = s.data.len() / if s.sixteen { 2 } else { 1 };
        assert_eq!(len, expected.len());
        let diffs: Vec<f64> = (0..len)
            .map(|i| (sample(frame, i) - f64::from(expected[i])).abs())
            .collect();
        let max = diffs.iter().copied().fold(0.0, f64::max);
        (max, diffs.iter().sum::<f64>() / len as f64)
    }

    fn rgb_of(pixels: &[RGBA8]) -> Vec<u8> {
        pixels.iter().flat_map(|p| [p.r, p.g, p.b]).collect()
    }

    fn gradient(w: usize, h: usize, alpha: impl Fn(usize, usize) -> u8) -> Vec<RGBA8> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                RGBA8::new(
                    (x * 255 / (w - 1)) as u8,
                    (y * 255 / (h - 1)) as u8,
                    ((x + y) * 255 / (w + h - 2)) as u8,
                    alpha(x, y),
                )
            })
            .collect()
    }

    #[test]
    fn flat_opaque_8_bit() {
        let pixels = vec![RGBA8::new(200, 40, 90, 255); 24 * 16];
        let avif = encode(&pixels, 24, 16, BitDepth::Eight);
        let frame = decode_display(&avif, &Limits::default()).unwrap();
        assert_eq!((frame.width, frame.height), (24, 16));
        assert_eq!((frame.samples.channels, frame.samples.sixteen), (3, false));
        let (max, _) = errors(&frame, &rgb_of(&pixels));
        assert!(max <= 3.0, "max error {max}");
    }

    #[test]
    fn gradient_10_bit() {
        let pixels = gradient(64, 48, |_, _| 255);
        let avif = encode(&pixels, 64, 48, BitDepth::Ten);
        let frame = decode_display(&avif, &Limits::default()).unwrap();
        assert_eq!((frame.width, frame.height), (64, 48));
        assert_eq!((frame.samples.channels, frame.samples.sixteen), (3, true));
        let (_, mean) = errors(&frame, &rgb_of(&pixels));
        assert!(mean < 3.0, "mean error {mean}");
    }

    #[test]
    fn transparent_gets_alpha() {
        for depth in [BitDepth::Eight, BitDepth::Ten] {
            let pixels = gradient(32, 32, |x, _| (x * 255 / 31) as u8);
            let avif = encode(&pixels, 32, 32, depth);
            let frame = decode_display(&avif, &Limits::default()).unwrap();
            assert_eq!(frame.samples.channels, 4);
            assert_eq!(frame.samples.sixteen, depth == BitDepth::Ten);
            let alpha = (0..pixels.len()).map(|i| sample(&frame, 4 * i + 3));
            for (got, p) in alpha.zip(&pixels) {
                assert!((got - f64::from(p.a)).abs() <= 3.0, "{got} vs {}", p.a);
            }
            let opaque = pixels.len() - 1;
            let rgb: Vec<f64> = (0..3).map(|c| sample(&frame, 4 * opaque + c)).collect();
            let want = [pixels[opaque].r, pixels[opaque].g, pixels[opaque].b];
            for (got, want) in rgb.iter().zip(want) {
                assert!((got - f64::from(want)).abs() <= 6.0, "{rgb:?} vs {want:?}");
            }
        }
    }

    /// Colour stored premultiplied by alpha comes out unassociated, as from a file that
    /// stores it so.
    #[test]
    fn premultiplied_alpha_is_undone() {
        let pixels = gradient(32, 32, |x, y| (128 + (x + y) * 127 / 62) as u8);
        let bt601 = Matrix::YCbCr {
            kr: 0.299,
            kb: 0.114,
        };
        // ravif's own premultiplied mode divides instead, so the planes are made here.
        let encoded = |premultiplied: bool| {
            let planes = pixels.iter().map(|p| {
                let times = |c: u8| (u16::from(c) * u16::from(p.a) + 127) / 255;
                let rgb = [p.r, p.g, p.b].map(|c| if premultiplied { times(c) as u8 } else { c });
                forward(rgb, bt601, true)
            });
            let mode = if premultiplied {
                ravif::AlphaColorMode::Premultiplied
            } else {
                ravif::AlphaColorMode::UnassociatedDirty
            };
            let alpha = pixels.iter().map(|p| p.a);
            encoder(BitDepth::Eight)
                .with_alpha_color_mode(mode)
                .encode_raw_planes_8_bit(
                    32,
                    32,
                    planes,
                    Some(alpha),
                    PixelRange::Full,
                    MatrixCoefficients::BT601,
                )
                .unwrap()
                .avif_file
        };
        let limits = Limits::default();
        let rgb = |frame: &Frame| -> Vec<f64> {
            (0..pixels.len() * 4)
                .filter(|i| i % 4 != 3)
                .map(|i| sample(frame, i))
                .collect()
        };
        let want: Vec<f64> = rgb_of(&pixels).into_iter().map(f64::from).collect();
        let mean = |got: Vec<f64>| {
            let total: f64 = got.iter().zip(&want).map(|(g, w)| (g - w).abs()).sum();
            total / want.len() as f64
        };
        let premultiplied = encoded(true);
        assert!(
            avif_parse::read_avif(&mut &premultiplied[..])
                .unwrap()
                .premultiplied_alpha
        );
        let frame = decode_display(&premultiplied, &limits).unwrap();
        let plain = decode_display(&encoded(false), &limits).unwrap();
        let (got, plain) = (mean(rgb(&frame)), mean(rgb(&plain)));
        assert!(
            got < plain + 2.0,
            "premultiplied {got}, unassociated {plain}"
        );
        // Left premultiplied, the colours would be darker by a quarter on average.
        let dark: Vec<f64> = (0..pixels.len() * 4)
            .filter(|i| i % 4 != 3)
            .map(|i| sample(&frame, i) * sample(&frame, i / 4 * 4 + 3) / 255.0)
            .collect();
        assert!(mean(dark) > got + 10.0);
    }

    /// The YCbCr of `rgb` (ITU-T H.273) on the 8-bit scale.
    fn forward(rgb: [u8; 3], matrix: Matrix, full_range: bool) -> [u8; 3] {
        let [r, g, b] = rgb.map(|v| f32::from(v) / 255.0);
        let (y, cb, cr) = match matrix {
            Matrix::Gbr => (g, b, r),
            Matrix::YCbCr { kr, kb } => {
                let y = kr * r + (1.0 - kr - kb) * g + kb * b;
                (
                    y,
                    (b - y) / (2.0 * (1.0 - kb)),
                    (r - y) / (2.0 * (1.0 - kr)),
                )
            }
        };
        let code = |v: f32, chroma: bool| match (full_range, chroma) {
            (true, false) => v * 255.0,
            (true, true) => v * 255.0 + 128.0,
            (false, false) => v * 219.0 + 16.0,
            (false, true) => v * 224.0 + 128.0,
        };
        let chroma = matrix != Matrix::Gbr;
        [code(y, false), code(cb, chroma), code(cr, chroma)].map(|v| v.round() as u8)
    }

    /// A flat 8-bit 4:4:4 AVIF of `rgb` coded with matrix `code` and range.
    fn coded(rgb: [u8; 3], code: u16, full_range: bool) -> Vec<u8> {
        let ycbcr = |kr, kb| Matrix::YCbCr { kr, kb };
        let (mc, matrix) = match code {
            0 => (MatrixCoefficients::Identity, Matrix::Gbr),
            1 => (MatrixCoefficients::BT709, ycbcr(0.2126, 0.0722)),
            9 => (MatrixCoefficients::BT2020NCL, ycbcr(0.2627, 0.0593)),
            _ => (MatrixCoefficients::BT601, ycbcr(0.299, 0.114)),
        };
        let range = if full_range {
            PixelRange::Full
        } else {
            PixelRange::Limited
        };
        let planes = vec![forward(rgb, matrix, full_range); 16 * 16];
        encoder(BitDepth::Eight)
            .encode_raw_planes_8_bit(16, 16, planes, None::<[u8; 0]>, range, mc)
            .unwrap()
            .avif_file
    }

    fn assert_flat(avif: &[u8], rgb: [u8; 3], what: &str) {
        let frame = decode_display(avif, &Limits::default()).unwrap();
        let (max, _) = errors(&frame, &rgb.repeat(16 * 16));
        assert!(max <= 3.0, "{what}: max error {max}");
    }

    #[test]
    fn matrices_and_ranges() {
        let rgb = [30, 180, 220];
        for code in [0, 1, 5, 9] {
            assert_flat(&coded(rgb, code, true), rgb, &format!("matrix {code}"));
        }
        // ravif's nclx box says full range even for a limited-range AV1 stream, and the box
        // wins: colours come out wrong until the flag is fixed.
        let mut avif = coded(rgb, 1, false);
        let frame = decode_display(&avif, &Limits::default()).unwrap();
        assert!(errors(&frame, &rgb.repeat(16 * 16)).0 > 10.0);
        let at = avif.windows(8).position(|w| w == b"colrnclx").unwrap();
        let nclx = |avif: &[u8]| Primary::of(avif).unwrap().nclx().map(|(.., m, f)| (m, f));
        assert_eq!(nclx(&avif), Some((1, true)));
        avif[at + 14] &= 0x7f;
        assert_eq!(nclx(&avif), Some((1, false)));
        assert_flat(&avif, rgb, "limited range from the nclx box");
        // Without the box, the sequence header's matrix and range apply.
        avif[at..at + 4].copy_from_slice(b"free");
        assert_eq!(nclx(&avif), None);
        assert_flat(&avif, rgb, "limited range from the sequence header");
    }

    fn kimono(name: &str) -> Vec<u8> {
        let path = format!("{}/../corpus/avif/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(path).unwrap()
    }

    /// A frame's samples on the 8-bit scale.
    fn eight(frame: &Frame) -> Vec<u8> {
        let s = &frame.samples;
        let len = s.data.len() / if s.sixteen { 2 } else { 1 };
        (0..len).map(|i| sample(frame, i).round() as u8).collect()
    }

    /// The conformance suite's picture stored turned, with `irot` and `imir` to turn it back,
    /// displays as the upright file: decoded and turned, within a few levels of it on average
    /// (two encodes of one picture), where the stored pixels are another picture; and the
    /// lossy score, which shows both files as displayed, is that of two encodes (69 to 73).
    #[test]
    fn rotation_and_mirroring_are_applied() {
        let limits = Limits::default();
        let upright = kimono("kimono.avif");
        let want = eight(&decode_display(&upright, &limits).unwrap());
        for (name, exif) in [
            ("kimono.rotate90.avif", 6),
            ("kimono.mirror-horizontal.avif", 2),
            ("kimono.mirror-vertical.rotate270.avif", 5),
        ] {
            let file = kimono(name);
            assert_eq!(orientation(&file), exif, "{name}");
            assert_eq!(not_shown(&file), None, "{name}");
            let stored = decode_display(&file, &limits).unwrap();
            if (stored.width, stored.height) == (722, 1024) {
                assert!(errors(&stored, &want).1 > 20.0, "{name}");
            }
            let shown = crate::pixels::orient(stored, exif).unwrap();
            let (_, mean) = errors(&shown, &want);
            assert!(mean < 3.0, "{name}: mean error {mean}");
            let score = crate::lossy::score(&upright, &file, &limits).unwrap();
            assert!(score > 50.0, "{name}: {score}");
        }
        assert_eq!(orientation(&upright), 1);
    }

    /// The suite's cropped file (`clap`) shows the part of the picture its box names.
    #[test]
    fn crop_is_applied() {
        let limits = Limits::default();
        let whole = decode_display(&kimono("kimono.avif"), &limits).unwrap();
        let part = cropped(whole, (272, 39, 385, 330)).unwrap();
        let crop = decode_display(&kimono("kimono.crop.avif"), &limits).unwrap();
        assert_eq!((crop.width, crop.height), (385, 330));
        let (_, mean) = errors(&crop, &eight(&part));
        assert!(mean < 3.0, "mean error {mean}");
        // One pixel to the side is another picture.
        let whole = decode_display(&kimono("kimono.avif"), &limits).unwrap();
        let beside = cropped(whole, (273, 39, 385, 330)).unwrap();
        assert!(errors(&crop, &eight(&beside)).1 > mean + 1.0);
    }

    /// Pictures the lossy mode cannot show as a viewer does are named, with the reason:
    /// colour that is not sRGB's without a profile, and a primary item that is not one
    /// coded image.
    #[test]
    fn what_is_not_shown_is_named() {
        let avif = coded([30, 180, 220], 1, true);
        assert_eq!(not_shown(&avif), None);
        let at = avif.windows(8).position(|w| w == b"colrnclx").unwrap();
        // BT.2020 primaries with the PQ transfer: an HDR picture.
        let mut hdr = avif.clone();
        hdr[at + 8..at + 12].copy_from_slice(&[0, 9, 0, 16]);
        let reason = not_shown(&hdr).unwrap();
        assert!(reason.contains("primaries 9, transfer 16"), "{reason}");
        // sRGB's transfer with BT.709 primaries is shown as decoded.
        let mut srgb = avif.clone();
        srgb[at + 8..at + 12].copy_from_slice(&[0, 1, 0, 13]);
        assert_eq!(not_shown(&srgb), None);
        assert_eq!(icc(&srgb), None);
        // Display P3 is shown through a profile made for it; P3 with PQ is HDR.
        let mut p3 = avif.clone();
        p3[at + 8..at + 12].copy_from_slice(&[0, 12, 0, 13]);
        assert_eq!(not_shown(&p3), None);
        assert_eq!(icc(&p3), crate::colour::display_p3());
        p3[at + 8..at + 12].copy_from_slice(&[0, 12, 0, 16]);
        assert!(not_shown(&p3).is_some());
        assert_eq!(icc(&p3), None);
        let mut matrix = avif.clone();
        matrix[at + 12..at + 14].copy_from_slice(&[0, 10]);
        assert!(
            not_shown(&matrix)
                .unwrap()
                .contains("matrix coefficients 10")
        );
        // A layered picture shown at one operating point or layer (rav1d decodes them all).
        for (from, to) in [(b"colr", b"a1op"), (b"pixi", b"lsel")] {
            let mut layered = avif.clone();
            let at = layered.windows(4).position(|w| w == from).unwrap();
            layered[at..at + 4].copy_from_slice(to);
            let reason = not_shown(&layered).unwrap();
            assert!(reason.contains("(a1op, lsel)"), "{reason}");
        }
        // Without a clap, the picture is not cut to the size ispe gives.
        let mut small = avif.clone();
        let ispe = small.windows(4).position(|w| w == b"ispe").unwrap();
        small[ispe + 8..ispe + 16].copy_from_slice(&[0, 0, 0, 8, 0, 0, 0, 8]);
        assert_eq!(not_shown(&small), None);
        let frame = decode_display(&small, &Limits::default()).unwrap();
        assert_eq!((frame.width, frame.height), (16, 16));
        let mut grid = avif.clone();
        let infe = grid.windows(4).position(|w| w == b"infe").unwrap();
        let kind = infe + grid[infe..].windows(4).position(|w| w == b"av01").unwrap();
        grid[kind..kind + 4].copy_from_slice(b"grid");
        let reason = not_shown(&grid).unwrap();
        assert!(reason.contains("'grid'"), "{reason}");
    }

    /// `avif` with the colour description of its AV1 sequence header (written by ravif as
    /// BT.709 primaries, sRGB transfer, BT.709 matrix) set to `to`, and its nclx box renamed
    /// so the header is all that names the colour.
    fn sequence_coloured(avif: &[u8], to: [u8; 3]) -> Vec<u8> {
        let bits = |bytes: &[u8]| -> Vec<u8> {
            bytes
                .iter()
                .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
                .collect()
        };
        let mut stream = bits(avif);
        let (from, to) = (bits(&[1, 13, 1]), bits(&to));
        let mdat = 8 * avif.windows(4).position(|w| w == b"mdat").unwrap();
        let at = mdat + stream[mdat..].windows(24).position(|w| w == from).unwrap();
        stream[at..at + 24].copy_from_slice(&to);
        let mut out: Vec<u8> = stream
            .chunks(8)
            .map(|b| b.iter().fold(0, |v, bit| v << 1 | bit))
            .collect();
        let nclx = out.windows(8).position(|w| w == b"colrnclx").unwrap();
        out[nclx..nclx + 4].copy_from_slice(b"free");
        out
    }

    #[test]
    fn colour_from_the_sequence_header_without_nclx() {
        let avif = coded([30, 180, 220], 1, true);
        let item = |avif: &[u8]| read_avif(avif).primary_item.to_vec();
        assert_eq!(av1::sequence_colour(&item(&avif)), Some((1, 13, 1, true)));
        assert_eq!(av1::sequence_colour(&[]), None);
        // A truncated header (which overflows rav1d's reader in debug builds) is refused
        // before rav1d reads it.
        assert!(av1_metadata(&item(&avif)[..3]).is_err());
        let srgb = sequence_coloured(&avif, [1, 13, 1]);
        assert_eq!(Primary::of(&srgb).unwrap().nclx(), None);
        assert_eq!((not_shown(&srgb), icc(&srgb)), (None, None));
        let hdr = sequence_coloured(&avif, [9, 16, 9]);
        assert_eq!(av1::sequence_colour(&item(&hdr)), Some((9, 16, 9, true)));
        let reason = not_shown(&hdr).unwrap();
        assert!(reason.contains("primaries 9, transfer 16"), "{reason}");
        let p3 = sequence_coloured(&avif, [12, 13, 1]);
        assert_eq!(not_shown(&p3), None);
        assert_eq!(icc(&p3), crate::colour::display_p3());
        let matrix = sequence_coloured(&avif, [1, 13, 10]);
        let reason = not_shown(&matrix).unwrap();
        assert!(reason.contains("matrix coefficients 10"), "{reason}");
    }

    fn read_avif(avif: &[u8]) -> avif_parse::AvifData {
        avif_parse::read_avif(&mut &avif[..]).unwrap()
    }

    fn planes<'a>(
        depth: u8,
        subsampling: (bool, bool),
        luma: Plane<'a>,
        chroma: Option<[Plane<'a>; 2]>,
    ) -> Planes<'a> {
        Planes {
            depth,
            subsampling,
            luma,
            chroma,
            matrix: 2,
            full_range: true,
        }
    }

    fn plane16(data: &[u16], w: usize, h: usize) -> Plane<'_> {
        Plane::new(Texels::Sixteen(data), w, w, h).unwrap()
    }

    fn plane8(data: &[u8], w: usize, h: usize) -> Plane<'_> {
        Plane::new(Texels::Eight(data), w, w, h).unwrap()
    }

    #[test]
    fn monochrome_12_bit_scales_to_16_bits() {
        let luma = [0, 2048, 4095, 1000];
        let image = planes(12, (true, true), plane16(&luma, 2, 2), None);
        let rgb = to_rgb(&image, Matrix::Gbr, true, None, true).unwrap();
        let first: Vec<u16> = rgb
            .chunks(2)
            .step_by(3)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect();
        let want = luma.map(|v| (f64::from(v) * 65535.0 / 4095.0).round() as u16);
        assert_eq!(first, want);
        assert_eq!(&rgb[..6], &[0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn chroma_upsampling_420_and_422() {
        // Identity coding puts Cr in red: a 3x3 picture with 2x2 (4:2:0) or 2x3 (4:2:2) chroma.
        let luma = [128; 9];
        let cb = [0; 6];
        let cr = [0, 200, 0, 200, 0, 200];
        for (sub, ch) in [((true, true), 2), ((true, false), 3)] {
            let image = planes(
                8,
                sub,
                plane8(&luma, 3, 3),
                Some([plane8(&cb, 2, ch), plane8(&cr, 2, ch)]),
            );
            let rgb = to_rgb(&image, Matrix::Gbr, true, None, false).unwrap();
            let red: Vec<u8> = rgb.chunks(3).map(|p| p[0]).collect();
            // Between columns 0 and 1 of chroma: 3:1 weights, edges clamped.
            assert_eq!(red, [0, 50, 150].repeat(3), "{sub:?}");
        }
    }

    #[test]
    fn limited_range_alpha_expands() {
        let luma = [235, 16];
        let alpha_luma = [16u8, 235];
        let image = planes(8, (true, true), plane8(&luma, 2, 1), None);
        let mut alpha = planes(8, (true, true), plane8(&alpha_luma, 2, 1), None);
        alpha.full_range = false;
        let rgba = to_rgb(&image, Matrix::Gbr, false, Some((&alpha, false)), false).unwrap();
        assert_eq!(rgba, [255, 255, 255, 0, 0, 0, 0, 255]);
    }

    #[test]
    fn bad_input_is_an_error() {
        let avif = encode(&gradient(16, 16, |_, _| 255), 16, 16, BitDepth::Eight);
        let limits = Limits::default();
        assert!(decode_display(b"", &limits).is_err());
        assert!(decode_display(b"\0\0\0\x0cftypavif garbage", &limits).is_err());
        for cut in [20, avif.len() / 2, avif.len() - 10] {
            assert!(
                decode_display(&avif[..cut], &limits).is_err(),
                "cut at {cut}"
            );
        }
        // Damaged AV1 data may decode to something or fail; it must not panic.
        for at in (avif.len() - 40..avif.len()).step_by(3) {
            let mut bad = avif.clone();
            bad[at] ^= 0x5a;
            let _ = decode_display(&bad, &limits);
        }
        let small = Limits {
            max_pixels: 255,
            ..Limits::default()
        };
        assert!(matches!(
            decode_display(&avif, &small),
            Err(Error::LimitExceeded { .. })
        ));
    }
}
