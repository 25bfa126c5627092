//! AVIF encoding: libaom (AV1, all-intra) for the pictures, avif-serialize for the container.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::os::raw::{c_int, c_uint};

use libaom_sys as aom;

use crate::error::{Error, Result};
use crate::format::Format;
use crate::pixels::Rgba8;
use crate::work;

/// Encoder threads, fixed so that the bytes do not depend on the machine.
const THREADS: c_uint = 2;

/// Highest aom quantizer (cq-level); 0 is the finest.
pub(crate) const MAX_QUANTIZER: u8 = 63;

/// Highest aom speed (cpu-used) in all-intra use.
pub(crate) const MAX_SPEED: u8 = 9;

/// BT.601 luma weights: the matrix written in the `colr` box and the sequence header.
const KR: f32 = 0.299;
const KB: f32 = 0.114;

/// An AVIF of `image`, 10-bit 4:4:4 full-range BT.601 YCbCr, at aom `quantizer` (0 finest to
/// 63) and `speed` (0 slowest to 9); alpha, when any pixel is not opaque, as an alpha item.
/// `screen` turns aom's screen-content tools (palettes, block copy) on for the colour,
/// whatever aom's own test of the picture says.
pub(crate) fn encode(image: &Rgba8, quantizer: u8, speed: u8, screen: bool) -> Result<Vec<u8>> {
    let (width, height) = (image.width as usize, image.height as usize);
    if width == 0 || height == 0 {
        return Err(Error::encode(Format::Avif, "empty image"));
    }
    if width.checked_mul(height).and_then(|n| n.checked_mul(4)) != Some(image.data.len()) {
        return Err(Error::encode(
            Format::Avif,
            "pixel buffer does not match the dimensions",
        ));
    }
    let quantizer = quantizer.min(MAX_QUANTIZER);
    let speed = speed.min(MAX_SPEED);
    let opaque = image.opaque();
    let planes = ycbcr_planes(image, opaque)?;
    let alpha_planes = if opaque {
        None
    } else {
        Some(alpha_plane(image)?)
    };
    let colour = || {
        av1(
            &planes,
            image.width,
            image.height,
            false,
            quantizer,
            speed,
            screen,
        )
    };
    // The alpha a little finer than the colour: its errors show on every background.
    let alpha = || {
        alpha_planes
            .as_ref()
            .map(|planes| {
                let finer = quantizer.saturating_sub(4);
                av1(planes, image.width, image.height, true, finer, speed, false)
            })
            .transpose()
    };
    let (colour, alpha) = rayon::join(colour, alpha);
    let (colour, alpha) = (colour?, alpha?);
    let mut container = avif_serialize::Aviffy::new();
    container
        .set_matrix_coefficients(avif_serialize::constants::MatrixCoefficients::Bt601)
        .set_full_color_range(true);
    Ok(container.to_vec(&colour, alpha.as_deref(), image.width, image.height, 10))
}

/// Y, Cb and Cr planes one after the other, 10-bit. Pixels no one sees (alpha 0) take the
/// colours between their visible neighbours on the row, which cost few bits.
fn ycbcr_planes(image: &Rgba8, opaque: bool) -> Result<Vec<u16>> {
    let (width, height) = (image.width as usize, image.height as usize);
    let size = width * height;
    let mut planes = zeroed::<u16>(size * 3)?;
    let mut row = zeroed::<f32>(width * 3)?;
    for y in 0..height {
        let pixels = &image.data[y * width * 4..(y + 1) * width * 4];
        for (x, p) in pixels.chunks_exact(4).enumerate() {
            row[x * 3..x * 3 + 3].copy_from_slice(&[
                f32::from(p[0]),
                f32::from(p[1]),
                f32::from(p[2]),
            ]);
        }
        if !opaque {
            fill_hidden(&mut row, pixels);
        }
        for x in 0..width {
            let [r, g, b] = [row[x * 3], row[x * 3 + 1], row[x * 3 + 2]];
            let luma = luma(r, g, b);
            let cb = (b - luma) / (2.0 * (1.0 - KB)) + 128.0;
            let cr = (r - luma) / (2.0 * (1.0 - KR)) + 128.0;
            planes[y * width + x] = ten(luma);
            planes[size + y * width + x] = ten(cb);
            planes[2 * size + y * width + x] = ten(cr);
        }
    }
    Ok(planes)
}

/// BT.601 luma of an RGB colour on the 8-bit scale.
fn luma(r: f32, g: f32, b: f32) -> f32 {
    KR * r + (1.0 - KR - KB) * g + KB * b
}

/// A sample on the 8-bit scale as a 10-bit one.
fn ten(v: f32) -> u16 {
    (v * (1023.0 / 255.0)).round().clamp(0.0, 1023.0) as u16
}

/// How aom's screen-content tools (palettes, intra block copy) stand for a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    /// aom leaves them off, and few blocks look like a palette's.
    Off,
    /// aom leaves them off, but 16×16 blocks of 2 to 8 colours (what a palette holds) cover
    /// a tenth of the picture: worth a try. On a dark 2.5 MP gradient they made a third
    /// fewer bytes at one score; on most photos they were within 1 %, but up to 6 % bigger.
    Untried,
    /// aom turns them on itself: blocks of 2 to 4 luma values in the 10-bit picture cover a
    /// tenth of it.
    On,
}

/// What aom makes of `image`'s 16×16 blocks (see [`Screen`]).
pub(crate) fn screen_content(image: &Rgba8) -> Screen {
    const SIDE: usize = 16;
    let (width, height) = (image.width as usize, image.height as usize);
    let (mut palette, mut aom) = (0, 0);
    for top in (0..height / SIDE).map(|i| i * SIDE) {
        for left in (0..width / SIDE).map(|i| i * SIDE) {
            let (colours, lumas) = distinct(image, top, left, SIDE);
            palette += usize::from((2..=8).contains(&colours));
            aom += usize::from((2..=4).contains(&lumas));
        }
    }
    let tenth = |blocks: usize| blocks * SIDE * SIDE * 10 > width * height;
    if tenth(aom) {
        Screen::On
    } else if tenth(palette) {
        Screen::Untried
    } else {
        Screen::Off
    }
}

/// The distinct colours (counted up to 9) and 10-bit luma values (up to 5) in the square of
/// `side` pixels at `top`, `left`.
fn distinct(image: &Rgba8, top: usize, left: usize, side: usize) -> (usize, usize) {
    let width = image.width as usize;
    let (mut colours, mut lumas) = ([0u32; 9], [0u16; 5]);
    let (mut c, mut l) = (0, 0);
    for y in top..top + side {
        let start = (y * width + left) * 4;
        for p in image.data[start..start + side * 4].chunks_exact(4) {
            let colour = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
            if c < colours.len() && !colours[..c].contains(&colour) {
                colours[c] = colour;
                c += 1;
            }
            let value = ten(luma(f32::from(p[0]), f32::from(p[1]), f32::from(p[2])));
            if l < lumas.len() && !lumas[..l].contains(&value) {
                lumas[l] = value;
                l += 1;
            }
            if c == colours.len() && l == lumas.len() {
                return (c, l);
            }
        }
    }
    (c, l)
}

/// Replaces the colour of each run of fully transparent pixels in `row` (RGB, 3 floats a
/// pixel) with a blend from the visible pixel before the run to the one after it.
fn fill_hidden(row: &mut [f32], pixels: &[u8]) {
    let width = pixels.len() / 4;
    let hidden = |x: usize| pixels[x * 4 + 3] == 0;
    let mut x = 0;
    while x < width {
        if !hidden(x) {
            x += 1;
            continue;
        }
        let start = x;
        while x < width && hidden(x) {
            x += 1;
        }
        let before = start
            .checked_sub(1)
            .map(|i| [row[i * 3], row[i * 3 + 1], row[i * 3 + 2]]);
        let after = (x < width).then(|| [row[x * 3], row[x * 3 + 1], row[x * 3 + 2]]);
        let (from, to) = match (before, after) {
            (Some(a), Some(b)) => (a, b),
            (Some(a), None) => (a, a),
            (None, Some(b)) => (b, b),
            (None, None) => ([0.0; 3], [0.0; 3]),
        };
        let run = (x - start + 1) as f32;
        for i in start..x {
            let t = (i - start + 1) as f32 / run;
            for c in 0..3 {
                row[i * 3 + c] = from[c] + (to[c] - from[c]) * t;
            }
        }
    }
}

/// The alpha as a monochrome picture, 10-bit, in the 4:2:0 layout aom wraps: a luma plane
/// of even width and height (the extra column and row repeat the edge), then two chroma
/// planes at mid grey that a monochrome encode ignores.
fn alpha_plane(image: &Rgba8) -> Result<Vec<u16>> {
    let (width, height) = (image.width as usize, image.height as usize);
    let (even_width, even_height) = (width.next_multiple_of(2), height.next_multiple_of(2));
    let luma = even_width * even_height;
    let mut planes = zeroed::<u16>(luma + luma / 2)?;
    for y in 0..even_height {
        for x in 0..even_width {
            let a = image.data[(y.min(height - 1) * width + x.min(width - 1)) * 4 + 3];
            planes[y * even_width + x] = (u16::from(a) << 2) | (u16::from(a) >> 6);
        }
    }
    planes[luma..].fill(512);
    Ok(planes)
}

/// An encoder context, destroyed when dropped.
struct Context(aom::aom_codec_ctx_t);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was initialised by aom_codec_enc_init_ver.
        unsafe { aom::aom_codec_destroy(&mut self.0) };
    }
}

impl Context {
    fn check(&self, status: aom::aom_codec_err_t, what: &str) -> Result<()> {
        if status == aom::AOM_CODEC_OK {
            return Ok(());
        }
        // SAFETY: the context is live; aom returns a static string or null.
        let detail = unsafe { aom::aom_codec_error_detail(&self.0) };
        let detail = if detail.is_null() {
            String::new()
        } else {
            // SAFETY: non-null, NUL-terminated, owned by the context.
            format!(": {}", unsafe { CStr::from_ptr(detail) }.to_string_lossy())
        };
        Err(Error::encode(
            Format::Avif,
            format!("aom {what} failed ({status}){detail}"),
        ))
    }

    fn control(&mut self, id: aom::aome_enc_control_id, value: c_int) -> Result<()> {
        // SAFETY: the context is live and every control used here takes an int.
        let status = unsafe { aom::aom_codec_control(&mut self.0, id as c_int, value) };
        self.check(status, "control")
    }
}

/// One AV1 picture (a sequence header and one key frame) of `planes`: 4:4:4 YCbCr, or the
/// luma of a 4:2:0 layout when `monochrome`; `screen` forces aom's screen-content tools on.
fn av1(
    planes: &[u16],
    width: u32,
    height: u32,
    monochrome: bool,
    quantizer: u8,
    speed: u8,
    screen: bool,
) -> Result<Vec<u8>> {
    // SAFETY: aom_codec_av1_cx returns a static interface.
    let iface = unsafe { aom::aom_codec_av1_cx() };
    let mut cfg = MaybeUninit::<aom::aom_codec_enc_cfg_t>::zeroed();
    // SAFETY: cfg is writable; aom fills every field for the usage.
    let status = unsafe {
        aom::aom_codec_enc_config_default(iface, cfg.as_mut_ptr(), aom::AOM_USAGE_ALL_INTRA)
    };
    if status != aom::AOM_CODEC_OK {
        return Err(Error::encode(
            Format::Avif,
            "aom has no all-intra configuration",
        ));
    }
    // SAFETY: initialised by aom_codec_enc_config_default.
    let mut cfg = unsafe { cfg.assume_init() };
    cfg.g_w = width;
    cfg.g_h = height;
    cfg.g_threads = THREADS;
    cfg.g_profile = if monochrome { 0 } else { 1 };
    cfg.g_bit_depth = aom::AOM_BITS_10;
    cfg.g_input_bit_depth = 10;
    cfg.g_limit = 1;
    cfg.g_lag_in_frames = 0;
    cfg.rc_end_usage = aom::AOM_Q;
    cfg.rc_min_quantizer = 0;
    cfg.rc_max_quantizer = c_uint::from(MAX_QUANTIZER);
    cfg.monochrome = c_uint::from(monochrome);
    cfg.full_still_picture_hdr = 1;
    let mut ctx = MaybeUninit::<aom::aom_codec_ctx_t>::zeroed();
    // SAFETY: ctx is writable, cfg is a valid configuration for iface.
    let status = unsafe {
        aom::aom_codec_enc_init_ver(
            ctx.as_mut_ptr(),
            iface,
            &cfg,
            aom::AOM_CODEC_USE_HIGHBITDEPTH as aom::aom_codec_flags_t,
            aom::AOM_ENCODER_ABI_VERSION as c_int,
        )
    };
    if status != aom::AOM_CODEC_OK {
        return Err(Error::encode(
            Format::Avif,
            format!("aom could not start ({status})"),
        ));
    }
    // SAFETY: initialised by a successful aom_codec_enc_init_ver.
    let mut ctx = Context(unsafe { ctx.assume_init() });
    ctx.control(aom::AOME_SET_CPUUSED, c_int::from(speed))?;
    ctx.control(aom::AOME_SET_CQ_LEVEL, c_int::from(quantizer))?;
    ctx.control(aom::AV1E_SET_ROW_MT, 1)?;
    ctx.control(aom::AV1E_SET_COLOR_RANGE, 1)?;
    if !monochrome {
        ctx.control(aom::AV1E_SET_COLOR_PRIMARIES, 1)?;
        ctx.control(aom::AV1E_SET_TRANSFER_CHARACTERISTICS, 13)?;
        ctx.control(aom::AV1E_SET_MATRIX_COEFFICIENTS, 6)?;
    }
    // Tuned for SSIM rather than PSNR: 4 % fewer bytes at one SSIMULACRA2 score on five
    // corpus images (libheif's default too).
    ctx.control(aom::AOME_SET_TUNING, aom::AOM_TUNE_SSIM as c_int)?;
    if screen {
        ctx.control(aom::AV1E_SET_TUNE_CONTENT, aom::AOM_CONTENT_SCREEN as c_int)?;
    }

    let format = if monochrome {
        aom::AOM_IMG_FMT_I42016
    } else {
        aom::AOM_IMG_FMT_I44416
    };
    let mut image = MaybeUninit::<aom::aom_image_t>::zeroed();
    // SAFETY: the planes hold width × height samples of each plane of `format` (checked by
    // the callers' layouts), rows one after the other, and outlive the encode below; aom
    // only reads them.
    let wrapped = unsafe {
        aom::aom_img_wrap(
            image.as_mut_ptr(),
            format,
            width,
            height,
            1,
            planes.as_ptr().cast_mut().cast(),
        )
    };
    if wrapped.is_null() {
        return Err(Error::encode(Format::Avif, "aom cannot wrap the picture"));
    }
    // SAFETY: initialised by aom_img_wrap.
    let mut image = unsafe { image.assume_init() };
    image.bit_depth = 10;
    image.monochrome = c_int::from(monochrome);
    image.range = aom::AOM_CR_FULL_RANGE;
    if !monochrome {
        image.cp = aom::AOM_CICP_CP_BT_709;
        image.tc = aom::AOM_CICP_TC_SRGB;
        image.mc = aom::AOM_CICP_MC_BT_601;
    }
    let mut out = Vec::new();
    // SAFETY: the context is live and the image wraps live planes.
    let status = unsafe { aom::aom_codec_encode(&mut ctx.0, &image, 0, 1, 0) };
    ctx.check(status, "encode")?;
    collect(&mut ctx, &mut out)?;
    // SAFETY: a null image flushes the encoder.
    let status = unsafe { aom::aom_codec_encode(&mut ctx.0, std::ptr::null(), 0, 0, 0) };
    ctx.check(status, "flush")?;
    collect(&mut ctx, &mut out)?;
    // A temporal delimiter leads aom's output; an AVIF item holds none.
    if out.starts_with(&[0x12, 0x00]) {
        out.drain(..2);
    }
    if out.is_empty() {
        return Err(Error::encode(Format::Avif, "aom wrote no frame"));
    }
    Ok(out)
}

/// Appends the frame packets aom has ready to `out`.
fn collect(ctx: &mut Context, out: &mut Vec<u8>) -> Result<()> {
    let mut iter = std::ptr::null();
    loop {
        // SAFETY: the context is live; iter starts null and is advanced by aom.
        let packet = unsafe { aom::aom_codec_get_cx_data(&mut ctx.0, &mut iter) };
        if packet.is_null() {
            return Ok(());
        }
        // SAFETY: non-null packets are valid until the next aom call.
        let packet = unsafe { &*packet };
        if packet.kind != aom::AOM_CODEC_CX_FRAME_PKT {
            continue;
        }
        // SAFETY: a frame packet's data is its frame, `sz` bytes at `buf`.
        let frame = unsafe {
            let frame = packet.data.frame;
            std::slice::from_raw_parts(frame.buf.cast::<u8>(), frame.sz)
        };
        out.try_reserve(frame.len())
            .map_err(|e| Error::encode(Format::Avif, format!("cannot allocate: {e}")))?;
        out.extend_from_slice(frame);
    }
}

/// `len` zeros, or an encoder error (the search then skips AVIF) when out of memory.
fn zeroed<T: Clone + Default>(len: usize) -> Result<Vec<T>> {
    work::zeroed(len).map_err(|e| match e {
        Error::InvalidOption(reason) => Error::encode(Format::Avif, reason),
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smooth gradients plus deterministic noise, a little like a photo.
    fn photo(width: u32, height: u32, transparent: bool) -> Rgba8 {
        let mut data = Vec::new();
        let mut seed = 0x2545_f491_u32;
        for y in 0..height {
            for x in 0..width {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                let noise = (seed % 24) as i32 - 12;
                let px = |v: u32| (v as i32 + noise).clamp(0, 255) as u8;
                let r = px(x * 255 / width);
                let g = px(y * 255 / height);
                let b = px((x + y) * 128 / (width + height) + 64);
                let a = if transparent {
                    (x * 255 / width) as u8
                } else {
                    255
                };
                data.extend_from_slice(&[r, g, b, a]);
            }
        }
        Rgba8 {
            width,
            height,
            data,
        }
    }

    fn parse(avif: &[u8]) -> avif_parse::AvifData {
        avif_parse::read_avif(&mut &avif[..]).expect("our output parses")
    }

    #[test]
    fn detected_as_avif_and_ten_bit() {
        let avif = encode(&photo(64, 64, false), 20, 8, false).unwrap();
        assert_eq!(crate::format::detect(&avif).unwrap(), Format::Avif);
        let meta = parse(&avif).primary_item_metadata().unwrap();
        assert_eq!(meta.bit_depth, 10);
        assert_eq!(meta.chroma_subsampling, (false, false));
    }

    #[test]
    fn lower_quality_is_smaller() {
        let image = photo(64, 64, false);
        let low = encode(&image, 40, 8, false).unwrap();
        let high = encode(&image, 5, 8, false).unwrap();
        assert!(low.len() < high.len(), "{} >= {}", low.len(), high.len());
    }

    #[test]
    fn deterministic() {
        let image = photo(96, 80, true);
        let first = encode(&image, 25, 6, false).unwrap();
        assert_eq!(first, encode(&image, 25, 6, false).unwrap());
        // Inside a one-thread rayon pool: same bytes as in the global pool.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(
            first,
            pool.install(|| encode(&image, 25, 6, false)).unwrap()
        );
    }

    /// Bands 2 pixels wide of 6 dark colours that step in red and blue at once: every 16×16
    /// block holds 6 colours whose 10-bit lumas are 6 values apart.
    fn dark_bands(width: u32, height: u32) -> Rgba8 {
        let mut data = Vec::new();
        for _ in 0..height {
            for x in 0..width {
                let v = (x / 2 % 8).min(5) as u8;
                data.extend_from_slice(&[10 + 3 * v, 20, 10 + 5 * v, 255]);
            }
        }
        Rgba8 {
            width,
            height,
            data,
        }
    }

    #[test]
    fn screen_tools_are_tried_only_where_aom_would_not_turn_them_on() {
        assert_eq!(screen_content(&dark_bands(64, 48)), Screen::Untried);
        // Photo-like noise: every block holds many colours.
        assert_eq!(screen_content(&photo(64, 48, false)), Screen::Off);
        // Two grey levels a block: aom counts 2 lumas and turns the tools on itself.
        let mut grey = dark_bands(64, 48);
        for p in grey.data.chunks_exact_mut(4) {
            let v = if p[0] < 20 { 40 } else { 41 };
            p[..3].fill(v);
        }
        assert_eq!(screen_content(&grey), Screen::On);
        // A flat picture: one colour a block.
        let flat = Rgba8 {
            width: 64,
            height: 48,
            data: [30, 40, 50, 255].repeat(64 * 48),
        };
        assert_eq!(screen_content(&flat), Screen::Off);
        // Smaller than a block.
        assert_eq!(screen_content(&dark_bands(15, 15)), Screen::Off);
    }

    #[test]
    fn screen_tools_change_the_encode_and_it_decodes() {
        let limits = crate::limits::Limits::default();
        let image = dark_bands(96, 64);
        let screen = encode(&image, 20, 8, true).unwrap();
        assert_ne!(screen, encode(&image, 20, 8, false).unwrap());
        assert_eq!(screen, encode(&image, 20, 8, true).unwrap());
        // At the finest quantizer it decodes to its pixels.
        let fine = encode(&image, 0, 8, true).unwrap();
        let frame = crate::codecs::avif::decode_display(&fine, &limits).unwrap();
        let decoded = Rgba8::from_frame(&frame).unwrap();
        for (a, b) in image.data.chunks_exact(4).zip(decoded.data.chunks_exact(4)) {
            for c in 0..4 {
                assert!(
                    i32::from(a[c]).abs_diff(i32::from(b[c])) <= 3,
                    "{a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn alpha_item_only_when_transparent() {
        let with = parse(&encode(&photo(32, 32, true), 20, 8, false).unwrap());
        assert!(with.alpha_item.is_some());
        let without_bytes = encode(&photo(32, 32, false), 20, 8, false).unwrap();
        assert!(parse(&without_bytes).alpha_item.is_none());
        let urn = b"urn:mpeg:mpegB:cicp:systems:auxiliary:alpha";
        assert!(!without_bytes.windows(urn.len()).any(|w| w == urn));
    }

    #[test]
    fn tiny_images_and_extreme_settings() {
        for (w, h) in [(1, 1), (2, 3), (3, 2)] {
            for transparent in [false, true] {
                let image = photo(w, h, transparent);
                for (quantizer, speed) in [(0, 0), (1, 1), (63, 9), (255, 255)] {
                    let avif = encode(&image, quantizer, speed, false).unwrap();
                    assert_eq!(crate::format::detect(&avif).unwrap(), Format::Avif);
                }
            }
        }
        // Fully transparent.
        let clear = Rgba8 {
            width: 2,
            height: 2,
            data: vec![0; 16],
        };
        assert!(
            parse(&encode(&clear, 30, 9, false).unwrap())
                .alpha_item
                .is_some()
        );
    }

    #[test]
    fn hidden_pixels_blend_between_their_visible_neighbours() {
        // RGBA: red, two hidden, blue, then a hidden run to the end.
        let pixels = [
            [255, 0, 0, 255],
            [9, 9, 9, 0],
            [9, 9, 9, 0],
            [0, 0, 255, 255],
            [9, 9, 9, 0],
        ]
        .concat();
        let mut row: Vec<f32> = pixels
            .chunks_exact(4)
            .flat_map(|p| p[..3].iter().map(|&v| f32::from(v)))
            .collect();
        fill_hidden(&mut row, &pixels);
        let third = 255.0 / 3.0;
        let expected = [
            [255.0, 0.0, 0.0],
            [2.0 * third, 0.0, third],
            [third, 0.0, 2.0 * third],
            [0.0, 0.0, 255.0],
            [0.0, 0.0, 255.0],
        ]
        .concat();
        for (got, want) in row.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-3, "{row:?}");
        }
    }

    /// Odd sizes with alpha: the monochrome alpha picture's even layout and the colour's
    /// planes come back where they were (near-lossless quantizer, decoded by rav1d).
    #[test]
    fn odd_sized_pictures_decode_to_their_pixels() {
        let limits = crate::limits::Limits::default();
        for (width, height) in [(5, 3), (3, 7), (64, 33)] {
            let image = photo(width, height, true);
            let avif = encode(&image, 0, 8, false).unwrap();
            let frame = crate::codecs::avif::decode_display(&avif, &limits).unwrap();
            let decoded = Rgba8::from_frame(&frame).unwrap();
            assert_eq!((decoded.width, decoded.height), (width, height));
            for (i, (a, b)) in image
                .data
                .chunks_exact(4)
                .zip(decoded.data.chunks_exact(4))
                .enumerate()
            {
                // Colour only where it is seen: hidden pixels were replaced.
                let channels = if a[3] == 0 { 3..4 } else { 0..4 };
                for c in channels {
                    let diff = i32::from(a[c]).abs_diff(i32::from(b[c]));
                    assert!(
                        diff <= 3,
                        "{width}x{height} pixel {i} channel {c}: {a:?} {b:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let empty = Rgba8 {
            width: 0,
            height: 4,
            data: Vec::new(),
        };
        assert!(encode(&empty, 30, 6, false).is_err());
        let short = Rgba8 {
            width: 4,
            height: 4,
            data: vec![0; 10],
        };
        assert!(encode(&short, 30, 6, false).is_err());
    }
}
