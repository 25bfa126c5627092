//! WebP: the RIFF container read by hand, pixels through libwebp. Lossless stills are
//! re-encoded losslessly at the effort the budget allows; lossy and animated files are
//! decoded to validate them and kept as they are.
#![allow(unsafe_code)]

use std::ffi::{c_int, c_void};
use std::time::Duration;

use libwebp_sys as sys;

use super::Attempt;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::limits::Header;
use crate::metadata::{essential_exif, exif_orientation};
use crate::options::{Metadata, Options};
use crate::pixels::Rgba8;
use crate::work::Deadline;

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::WebP, reason)
}

/// One RIFF chunk.
struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
}

/// The chunks of a WebP file; the RIFF size must fit in the file.
fn chunks(bytes: &[u8]) -> Result<Vec<Chunk<'_>>> {
    let declared = bytes
        .get(4..8)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or_else(|| malformed("truncated RIFF header"))?;
    let end = declared
        .checked_add(8)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| {
            malformed(format!(
                "RIFF size says {declared} bytes but the file holds {}",
                bytes.len() - 8
            ))
        })?;
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= end {
        let kind = [bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]];
        let len = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let data = bytes
            .get(pos + 8..pos + 8 + len)
            .filter(|_| pos + 8 + len <= end)
            .ok_or_else(|| malformed("a chunk runs past the RIFF size"))?;
        out.push(Chunk { kind, data });
        pos += 8 + len + (len & 1);
    }
    if out.is_empty() {
        return Err(malformed("no chunks"));
    }
    Ok(out)
}

fn le24(data: &[u8], at: usize) -> Result<u32> {
    data.get(at..at + 3)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], 0]))
        .ok_or_else(|| malformed("chunk too short"))
}

/// Width and height of a `VP8 ` or `VP8L` bitstream.
fn bitstream_size(chunk: &Chunk<'_>) -> Result<(u32, u32)> {
    let d = chunk.data;
    match &chunk.kind {
        b"VP8 " if d.len() >= 10 && d[3..6] == [0x9D, 0x01, 0x2A] => Ok((
            u32::from(u16::from_le_bytes([d[6], d[7]]) & 0x3FFF),
            u32::from(u16::from_le_bytes([d[8], d[9]]) & 0x3FFF),
        )),
        b"VP8L" if d.len() >= 5 && d[0] == 0x2F => {
            let bits = u32::from_le_bytes([d[1], d[2], d[3], d[4]]);
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        _ => Err(malformed("bad VP8/VP8L bitstream header")),
    }
}

/// What a WebP file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Lossy,
    Lossless,
    Animated,
}

fn kind(chunks: &[Chunk<'_>]) -> Result<Kind> {
    if chunks.iter().any(|c| &c.kind == b"ANMF") {
        return Ok(Kind::Animated);
    }
    match chunks
        .iter()
        .find(|c| &c.kind == b"VP8 " || &c.kind == b"VP8L")
    {
        Some(c) if &c.kind == b"VP8L" => Ok(Kind::Lossless),
        Some(_) => Ok(Kind::Lossy),
        None => Err(malformed("no image data")),
    }
}

/// Whether `bytes` is a lossless still, the only kind re-encoded.
pub(super) fn is_lossless_still(bytes: &[u8]) -> bool {
    chunks(bytes)
        .and_then(|c| kind(&c))
        .is_ok_and(|k| k == Kind::Lossless)
}

pub(super) fn probe(bytes: &[u8]) -> Result<Header> {
    let chunks = chunks(bytes)?;
    let mut header = match chunks.first() {
        Some(c) if &c.kind == b"VP8X" => {
            let width = le24(c.data, 4)? + 1;
            let height = le24(c.data, 7)? + 1;
            Header {
                width,
                height,
                ..Header::default()
            }
        }
        Some(c) => {
            let (width, height) = bitstream_size(c)?;
            Header::still(width, height)
        }
        None => return Err(malformed("no chunks")),
    };
    let still = header.frames == 0;
    for chunk in &chunks {
        match &chunk.kind {
            b"ANMF" => header.add_frame(le24(chunk.data, 6)? + 1, le24(chunk.data, 9)? + 1),
            b"VP8 " | b"VP8L" if still && header.frames == 0 => {
                let (width, height) = bitstream_size(chunk)?;
                header.add_frame(width, height);
            }
            b"ICCP" | b"EXIF" | b"XMP " => header.metadata_bytes += chunk.data.len() as u64,
            _ => {}
        }
    }
    if header.width == 0 || header.height == 0 || header.frames == 0 {
        return Err(malformed("no frame of non-zero size"));
    }
    header.bytes_per_pixel = 4;
    Ok(header)
}

/// Decodes a still to RGBA for the guard (lossless) or only to validate it (lossy); an
/// animation is decoded frame by frame to validate it.
pub(super) fn decode(bytes: &[u8]) -> Result<Option<Vec<Frame>>> {
    match kind(&chunks(bytes)?)? {
        Kind::Animated => validate_animation(bytes).map(|()| None),
        Kind::Lossy => decode_still(bytes).map(|_| None),
        Kind::Lossless => decode_still(bytes).map(Some),
    }
}

fn decode_still(bytes: &[u8]) -> Result<Vec<Frame>> {
    let (mut width, mut height) = (0, 0);
    // SAFETY: libwebp reads `bytes` and returns a malloc'd RGBA buffer or null.
    let pixels =
        unsafe { sys::WebPDecodeRGBA(bytes.as_ptr(), bytes.len(), &mut width, &mut height) };
    if pixels.is_null() {
        return Err(malformed("libwebp could not decode the bitstream"));
    }
    let len = width as usize * height as usize * 4;
    // SAFETY: libwebp returned width * height RGBA pixels at `pixels`.
    let data = unsafe { std::slice::from_raw_parts(pixels, len) }.to_vec();
    // SAFETY: the buffer came from WebPDecodeRGBA.
    unsafe { sys::WebPFree(pixels.cast()) };
    Ok(vec![Frame::still(
        width as u32,
        height as u32,
        Samples::new(4, false, data),
    )])
}

/// Deletes the animation decoder on every path.
struct AnimDecoder(*mut sys::WebPAnimDecoder);

impl Drop for AnimDecoder {
    fn drop(&mut self) {
        // SAFETY: the pointer came from WebPAnimDecoderNew and is deleted once.
        unsafe { sys::WebPAnimDecoderDelete(self.0) };
    }
}

fn validate_animation(bytes: &[u8]) -> Result<()> {
    let data = sys::WebPData {
        bytes: bytes.as_ptr(),
        size: bytes.len(),
    };
    // SAFETY: options are initialised by libwebp; `data` outlives the decoder.
    let decoder = unsafe {
        let mut options = std::mem::zeroed::<sys::WebPAnimDecoderOptions>();
        sys::WebPAnimDecoderOptionsInit(&mut options);
        options.color_mode = sys::WEBP_CSP_MODE::MODE_RGBA;
        options.use_threads = 0;
        sys::WebPAnimDecoderNew(&data, &options)
    };
    if decoder.is_null() {
        return Err(malformed("libwebp rejected the animation"));
    }
    let decoder = AnimDecoder(decoder);
    let mut info = sys::WebPAnimInfo::default();
    // SAFETY: a live decoder.
    if unsafe { sys::WebPAnimDecoderGetInfo(decoder.0, &mut info) } == 0 {
        return Err(malformed("libwebp rejected the animation"));
    }
    // SAFETY: a live decoder; the frame buffer it returns stays its own.
    while unsafe { sys::WebPAnimDecoderHasMoreFrames(decoder.0) } != 0 {
        let mut buffer = std::ptr::null_mut();
        let mut timestamp: c_int = 0;
        if unsafe { sys::WebPAnimDecoderGetNext(decoder.0, &mut buffer, &mut timestamp) } == 0 {
            return Err(malformed("a frame of the animation is damaged"));
        }
    }
    Ok(())
}

/// libwebp's lossless presets (`cwebp -z`), 9 the strongest, with rough single-core seconds per
/// megapixel measured on the corpus; used only to pick a level.
const PRESETS: [(c_int, f64); 4] = [(9, 6.0), (6, 1.5), (3, 0.6), (1, 0.2)];

/// The strongest preset at [`Options::quick`]'s effort.
const QUICK_LEVEL: c_int = 3;

/// The preset for `options`: from the budget, at most [`QUICK_LEVEL`] when
/// [`Options::quick`].
fn level(header: &Header, options: &Options) -> c_int {
    let level = preset(header.total_pixels, options.time_budget);
    if options.quick {
        level.min(QUICK_LEVEL)
    } else {
        level
    }
}

/// Whether [`Options::quick`] lowers the preset for `options`: the budget's is above
/// [`QUICK_LEVEL`].
pub(super) fn quick_is_less(header: &Header, options: &Options) -> bool {
    preset(header.total_pixels, options.time_budget) > QUICK_LEVEL
}

fn preset(pixels: u64, budget: Duration) -> c_int {
    let megapixels = pixels as f64 / 1e6;
    PRESETS
        .iter()
        .find(|(_, cost)| cost * megapixels <= budget.as_secs_f64())
        .map_or(1, |(level, _)| *level)
}

pub(super) fn optimize(
    bytes: &[u8],
    header: &Header,
    options: &Options,
    deadline: &Deadline,
) -> Result<Attempt> {
    let chunks = chunks(bytes)?;
    match kind(&chunks)? {
        Kind::Lossy => return Ok(Attempt::unchanged("webp: lossy, kept as is")),
        Kind::Animated => return Ok(Attempt::unchanged("webp: animated, kept as is")),
        Kind::Lossless => {}
    }
    let frames = decode_still(bytes)?;
    let [frame] = frames.as_slice() else {
        return Err(malformed("expected one frame"));
    };
    let level = level(header, options);
    let bitstream = encode_lossless(frame, level, deadline)?;
    let data = wrap(&chunks, &bitstream, frame, options.metadata)?;
    Ok(Attempt {
        data: Some(data),
        actions: vec![format!("webp: libwebp lossless -z {level}, exact")],
    })
}

extern "C" fn progress(_percent: c_int, picture: *const sys::WebPPicture) -> c_int {
    // SAFETY: `user_data` is the `Deadline` borrowed for the whole WebPEncode call.
    let deadline = unsafe { &*((*picture).user_data as *const Deadline) };
    c_int::from(deadline.check().is_ok())
}

/// A lossless VP8L bitstream (the whole simple-format file) of one RGBA frame.
fn encode_lossless(frame: &Frame, level: c_int, deadline: &Deadline) -> Result<Vec<u8>> {
    let fail = |what: &str| Error::encode(Format::WebP, what);
    // SAFETY: config, picture and writer are initialised by libwebp before use, the RGBA
    // buffer holds width * height pixels, and every allocation is released below.
    unsafe {
        let mut config = sys::WebPConfig::new().map_err(|()| fail("config init"))?;
        if sys::WebPConfigLosslessPreset(&mut config, level) == 0 {
            return Err(fail("lossless preset"));
        }
        config.exact = 1;
        config.thread_level = 1;
        let mut picture = sys::WebPPicture::new().map_err(|()| fail("picture init"))?;
        picture.use_argb = 1;
        picture.width = frame.width as c_int;
        picture.height = frame.height as c_int;
        let stride = frame.width as c_int * 4;
        if sys::WebPPictureImportRGBA(&mut picture, frame.samples.data.as_ptr(), stride) == 0 {
            sys::WebPPictureFree(&mut picture);
            return Err(fail("out of memory importing pixels"));
        }
        let mut writer = std::mem::zeroed::<sys::WebPMemoryWriter>();
        sys::WebPMemoryWriterInit(&mut writer);
        picture.writer = Some(sys::WebPMemoryWrite);
        picture.custom_ptr = (&raw mut writer).cast::<c_void>();
        picture.progress_hook = Some(progress);
        picture.user_data = (deadline as *const Deadline).cast_mut().cast::<c_void>();
        let ok = sys::WebPEncode(&config, &mut picture) != 0;
        let error = picture.error_code;
        sys::WebPPictureFree(&mut picture);
        // libwebp leaves `mem` null when it wrote nothing (an early failure or abort).
        let out = if writer.mem.is_null() {
            Vec::new()
        } else {
            std::slice::from_raw_parts(writer.mem, writer.size).to_vec()
        };
        sys::WebPMemoryWriterClear(&mut writer);
        if !ok {
            deadline.check()?;
            return Err(Error::encode(
                Format::WebP,
                format!("libwebp error {error:?}"),
            ));
        }
        Ok(out)
    }
}

/// Puts the new bitstream in a container with the metadata the policy keeps.
fn wrap(input: &[Chunk<'_>], encoded: &[u8], frame: &Frame, metadata: Metadata) -> Result<Vec<u8>> {
    let find = |kind: &[u8; 4]| input.iter().find(|c| &c.kind == kind).map(|c| c.data);
    let (icc, exif, xmp) = match metadata {
        Metadata::None => (None, None, None),
        Metadata::Essential => (
            find(b"ICCP").map(<[u8]>::to_vec),
            find(b"EXIF").and_then(essential_exif),
            None,
        ),
        Metadata::All => (
            find(b"ICCP").map(<[u8]>::to_vec),
            find(b"EXIF").map(<[u8]>::to_vec),
            find(b"XMP ").map(<[u8]>::to_vec),
        ),
    };
    if icc.is_none() && exif.is_none() && xmp.is_none() {
        return Ok(encoded.to_vec());
    }
    let vp8l = encoded
        .get(12..)
        .ok_or_else(|| Error::encode(Format::WebP, "short output"))?;
    let alpha = frame.samples.data.chunks_exact(4).any(|p| p[3] != 0xFF);
    let flags = u8::from(icc.is_some()) << 5
        | u8::from(alpha) << 4
        | u8::from(exif.is_some()) << 3
        | u8::from(xmp.is_some()) << 2;
    let mut body = b"WEBP".to_vec();
    push_chunk(&mut body, b"VP8X", &vp8x(flags, frame.width, frame.height));
    if let Some(icc) = &icc {
        push_chunk(&mut body, b"ICCP", icc);
    }
    body.extend_from_slice(vp8l);
    if let Some(exif) = &exif {
        push_chunk(&mut body, b"EXIF", exif);
    }
    if let Some(xmp) = &xmp {
        push_chunk(&mut body, b"XMP ", xmp);
    }
    riff(&body)
}

/// The payload of a `VP8X` chunk: flags, then the canvas size less one, 24 bits each.
fn vp8x(flags: u8, width: u32, height: u32) -> Vec<u8> {
    let mut out = vec![flags, 0, 0, 0];
    out.extend_from_slice(&width.saturating_sub(1).to_le_bytes()[..3]);
    out.extend_from_slice(&height.saturating_sub(1).to_le_bytes()[..3]);
    out
}

/// A RIFF file around `body` ("WEBP" and its chunks).
fn riff(body: &[u8]) -> Result<Vec<u8>> {
    let size =
        u32::try_from(body.len()).map_err(|_| Error::encode(Format::WebP, "file over 4 GiB"))?;
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(body);
    Ok(out)
}

fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(kind);
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    if data.len() % 2 == 1 {
        out.push(0);
    }
}

/// A lossy WebP of `image` at libwebp `quality` (0 to 100) and `method` (0 to 6), sharp YUV
/// conversion when `sharp_yuv`; alpha, when any pixel is not opaque, compressed losslessly;
/// `icc` (if not empty) in an `ICCP` chunk. No EXIF: pixels are already upright.
pub(crate) fn encode_lossy(
    image: &Rgba8,
    quality: f32,
    sharp_yuv: bool,
    method: c_int,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let config = lossy_config(quality, sharp_yuv, method)?;
    let encoded = encode_picture(image, &config)?;
    match icc.filter(|profile| !profile.is_empty()) {
        Some(profile) => with_icc(&encoded, image, profile),
        None => Ok(encoded),
    }
}

fn encode_error(reason: impl std::fmt::Display) -> Error {
    Error::encode(Format::WebP, reason)
}

/// libwebp's default preset at `quality`, single-threaded (deterministic), alpha lossless.
fn lossy_config(quality: f32, sharp_yuv: bool, method: c_int) -> Result<sys::WebPConfig> {
    // libwebp's own check lets NaN through.
    if quality.is_nan() {
        return Err(encode_error("quality is NaN"));
    }
    let mut config =
        sys::WebPConfig::new_with_preset(sys::WebPPreset::WEBP_PRESET_DEFAULT, quality)
            .map_err(|()| encode_error("config init"))?;
    config.lossless = 0;
    config.method = method;
    config.use_sharp_yuv = c_int::from(sharp_yuv);
    config.alpha_compression = 1;
    config.alpha_quality = 100;
    config.exact = 0;
    config.thread_level = 0;
    // SAFETY: a config initialised by libwebp.
    if unsafe { sys::WebPValidateConfig(&config) } == 0 {
        return Err(encode_error(format!(
            "quality {quality} or method {method} out of range"
        )));
    }
    Ok(config)
}

/// Frees the picture's pixels on every path.
struct Picture(sys::WebPPicture);

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: initialised by WebPPictureInit; freeing an empty picture is a no-op.
        unsafe { sys::WebPPictureFree(&mut self.0) };
    }
}

/// Frees the memory writer's buffer on every path.
struct Writer(sys::WebPMemoryWriter);

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: initialised by WebPMemoryWriterInit; its buffer is libwebp's.
        unsafe { sys::WebPMemoryWriterClear(&mut self.0) };
    }
}

/// The encoder's file: `VP8 `, or `VP8X`, `ALPH` and `VP8 ` when there is alpha.
fn encode_picture(image: &Rgba8, config: &sys::WebPConfig) -> Result<Vec<u8>> {
    let pixels = (image.width as usize).checked_mul(image.height as usize);
    let (Ok(width), Ok(height), Ok(stride)) = (
        c_int::try_from(image.width),
        c_int::try_from(image.height),
        c_int::try_from(image.width.saturating_mul(4)),
    ) else {
        return Err(encode_error("image too large"));
    };
    if pixels.and_then(|p| p.checked_mul(4)) != Some(image.data.len()) {
        return Err(encode_error(format!(
            "{} bytes for a {width}x{height} RGBA image",
            image.data.len()
        )));
    }
    let mut picture = Picture(sys::WebPPicture::new().map_err(|()| encode_error("picture init"))?);
    // ARGB input: WebPEncode converts it to YUV itself, with sharp YUV when asked.
    picture.0.use_argb = 1;
    picture.0.width = width;
    picture.0.height = height;
    let rgba = image.data.as_ptr();
    // SAFETY: `rgba` holds `height` rows of `stride` bytes; libwebp copies them.
    let imported = unsafe {
        if image.opaque() {
            sys::WebPPictureImportRGBX(&mut picture.0, rgba, stride)
        } else {
            sys::WebPPictureImportRGBA(&mut picture.0, rgba, stride)
        }
    };
    if imported == 0 {
        return Err(encode_error(format!(
            "cannot import pixels ({:?})",
            picture.0.error_code
        )));
    }
    // Boxed: the picture points at it while encoding.
    let mut writer = Box::new(Writer(sys::WebPMemoryWriter {
        mem: std::ptr::null_mut(),
        size: 0,
        max_size: 0,
        pad: [0],
    }));
    // SAFETY: the writer outlives the encode; the config was validated.
    let ok = unsafe {
        sys::WebPMemoryWriterInit(&mut writer.0);
        picture.0.writer = Some(sys::WebPMemoryWrite);
        picture.0.custom_ptr = (&raw mut writer.0).cast::<c_void>();
        sys::WebPEncode(config, &mut picture.0) != 0
    };
    if !ok || writer.0.mem.is_null() {
        return Err(encode_error(format!(
            "libwebp error {:?}",
            picture.0.error_code
        )));
    }
    // SAFETY: libwebp wrote `size` bytes at `mem`.
    Ok(unsafe { std::slice::from_raw_parts(writer.0.mem, writer.0.size) }.to_vec())
}

/// The encoder's file made extended, with `profile` in an `ICCP` chunk after `VP8X`.
fn with_icc(encoded: &[u8], image: &Rgba8, profile: &[u8]) -> Result<Vec<u8>> {
    let chunks = chunks(encoded).map_err(|e| encode_error(format!("libwebp's output: {e}")))?;
    let flags = 1 << 5 | u8::from(chunks.iter().any(has_alpha)) << 4;
    let mut body = b"WEBP".to_vec();
    push_chunk(&mut body, b"VP8X", &vp8x(flags, image.width, image.height));
    push_chunk(&mut body, b"ICCP", profile);
    for chunk in chunks.iter().filter(|c| &c.kind != b"VP8X") {
        push_chunk(&mut body, &chunk.kind, chunk.data);
    }
    riff(&body)
}

/// Whether the chunk carries alpha: `ALPH`, or a `VP8L` header with its alpha bit set.
fn has_alpha(chunk: &Chunk<'_>) -> bool {
    match &chunk.kind {
        b"ALPH" => true,
        b"VP8L" => chunk.data.get(4).is_some_and(|b| b & 0x10 != 0),
        _ => false,
    }
}

/// Any still WebP, lossy or lossless, decoded to 8-bit RGBA.
pub(crate) fn decode_display(bytes: &[u8]) -> Result<Frame> {
    decode_still(bytes)?
        .pop()
        .ok_or_else(|| malformed("no frame"))
}

/// The ICC profile from the `ICCP` chunk.
pub(crate) fn icc(bytes: &[u8]) -> Option<Vec<u8>> {
    let chunks = chunks(bytes).ok()?;
    let chunk = chunks.iter().find(|c| &c.kind == b"ICCP")?;
    Some(chunk.data.to_vec()).filter(|profile| !profile.is_empty())
}

/// The EXIF orientation from the `EXIF` chunk (raw TIFF, or after an `Exif\0\0` prefix as
/// some writers put it): 1 when absent or out of range.
pub(crate) fn orientation(bytes: &[u8]) -> u16 {
    let chunks = chunks(bytes).unwrap_or_default();
    chunks
        .iter()
        .find(|c| &c.kind == b"EXIF")
        .map(|c| c.data.strip_prefix(b"Exif\0\0").unwrap_or(c.data))
        .and_then(exif_orientation)
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::Samples;

    /// Found by the `optimize` fuzz target: an encode aborted by the deadline writes nothing,
    /// and reading that empty output must not build a slice from a null pointer.
    #[test]
    fn an_aborted_encode_is_a_deadline_error() {
        let frame = Frame {
            width: 64,
            height: 64,
            control: [0; 6],
            samples: Samples::new(
                4,
                false,
                (0..64 * 64 * 4).map(|i| (i % 251) as u8).collect(),
            ),
        };
        let expired = Deadline::new(Some(Duration::ZERO));
        std::thread::sleep(Duration::from_millis(1));
        assert!(matches!(
            encode_lossless(&frame, 9, &expired),
            Err(Error::Deadline(_))
        ));
        let open = Deadline::new(None);
        assert!(encode_lossless(&frame, 1, &open).is_ok_and(|bytes| bytes.starts_with(b"RIFF")));
    }

    /// A photo-like image: smooth colour gradients with some deterministic noise, and alpha
    /// from `alpha(x, y)`.
    fn photo(width: u32, height: u32, alpha: impl Fn(u32, u32) -> u8) -> Rgba8 {
        let mut state = 0x2545_F491_u32;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 17) as i32 - 8
        };
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                let (xi, yi) = (x as i32, y as i32);
                for c in [xi * 2, yi * 2, 255 - xi - yi] {
                    data.push((c + noise()).clamp(0, 255) as u8);
                }
                data.push(alpha(x, y));
            }
        }
        Rgba8 {
            width,
            height,
            data,
        }
    }

    fn opaque(width: u32, height: u32) -> Rgba8 {
        photo(width, height, |_, _| 255)
    }

    fn kinds(bytes: &[u8]) -> Vec<[u8; 4]> {
        chunks(bytes).unwrap().iter().map(|c| c.kind).collect()
    }

    fn profile(len: usize) -> Vec<u8> {
        let mut icc: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        icc[..4].copy_from_slice(&(len as u32).to_be_bytes());
        icc[36..40].copy_from_slice(b"acsp");
        icc
    }

    fn lossy(image: &Rgba8, quality: f32, icc: Option<&[u8]>) -> Vec<u8> {
        encode_lossy(image, quality, false, 4, icc).unwrap()
    }

    #[test]
    fn lossy_encode_decodes_close_to_the_source() {
        let image = opaque(128, 96);
        let out = lossy(&image, 80.0, None);
        assert_eq!(crate::format::detect(&out).unwrap(), Format::WebP);
        assert_eq!(kinds(&out), [*b"VP8 "]);
        let frame = decode_display(&out).unwrap();
        assert_eq!((frame.width, frame.height), (128, 96));
        let pixels = image
            .data
            .chunks_exact(4)
            .zip(frame.samples.data.chunks_exact(4));
        let total: u64 = pixels
            .flat_map(|(a, b)| (0..3).map(move |c| u64::from(a[c].abs_diff(b[c]))))
            .sum();
        let error = total as f64 / (image.data.len() / 4 * 3) as f64;
        assert!(error < 6.0, "mean error {error}");
        assert_eq!(out, lossy(&image, 80.0, None));
    }

    #[test]
    fn options_change_the_output() {
        let image = opaque(128, 96);
        assert!(lossy(&image, 50.0, None).len() < lossy(&image, 90.0, None).len());
        let sharp = encode_lossy(&image, 80.0, true, 4, None).unwrap();
        assert_ne!(sharp, lossy(&image, 80.0, None));
        assert_ne!(
            encode_lossy(&image, 80.0, false, 0, None).unwrap(),
            lossy(&image, 80.0, None)
        );
    }

    #[test]
    fn alpha_is_kept_exactly() {
        let image = photo(64, 48, |x, y| ((x * 4) ^ (y * 5)) as u8);
        let out = lossy(&image, 60.0, None);
        assert_eq!(kinds(&out), [*b"VP8X", *b"ALPH", *b"VP8 "]);
        let frame = decode_display(&out).unwrap();
        let alpha = |data: &[u8]| data.chunks_exact(4).map(|p| p[3]).collect::<Vec<_>>();
        assert!(alpha(&frame.samples.data) == alpha(&image.data));
    }

    #[test]
    fn icc_makes_an_extended_file() {
        let icc_in = profile(3001);
        let out = lossy(&opaque(32, 24), 80.0, Some(&icc_in));
        assert_eq!(kinds(&out), [*b"VP8X", *b"ICCP", *b"VP8 "]);
        let header = probe(&out).unwrap();
        assert_eq!((header.width, header.height), (32, 24));
        assert_eq!(chunks(&out).unwrap()[0].data[0], 0x20);
        assert!(icc(&out) == Some(icc_in.clone()));
        assert_eq!(decode_display(&out).unwrap().width, 32);

        let translucent = photo(32, 24, |x, _| x as u8 * 8);
        let out = lossy(&translucent, 80.0, Some(&icc_in));
        assert_eq!(kinds(&out), [*b"VP8X", *b"ICCP", *b"ALPH", *b"VP8 "]);
        assert_eq!(chunks(&out).unwrap()[0].data[0], 0x30);
        assert!(icc(&out) == Some(icc_in));
        assert!(decode_display(&out).is_ok());

        assert!(icc(&lossy(&translucent, 80.0, None)).is_none());
        assert!(icc(b"RIFF\xff\xff\xff\xffWEBP").is_none());
    }

    #[test]
    fn orientation_comes_from_the_exif_chunk() {
        let out = lossy(&opaque(16, 16), 80.0, Some(&profile(100)));
        assert_eq!(orientation(&out), 1);
        let with_exif = |payload: &[u8]| {
            let mut body = out[8..].to_vec();
            push_chunk(&mut body, b"EXIF", payload);
            riff(&body).unwrap()
        };
        let tiff = crate::metadata::exif_with_orientation(8);
        assert_eq!(orientation(&with_exif(&tiff)), 8);
        assert_eq!(
            orientation(&with_exif(&[b"Exif\0\0".as_slice(), &tiff].concat())),
            8
        );
        assert_eq!(
            orientation(&with_exif(&crate::metadata::exif_with_orientation(0))),
            1
        );
        assert_eq!(orientation(&with_exif(b"garbage")), 1);
        assert_eq!(orientation(&out[..out.len() - 1]), 1);
    }

    #[test]
    fn bad_encoder_input_is_an_error() {
        let image = opaque(8, 8);
        for (quality, method) in [(f32::NAN, 4), (-1.0, 4), (101.0, 4), (80.0, 7), (80.0, -1)] {
            let result = encode_lossy(&image, quality, false, method, None);
            assert!(
                matches!(result, Err(Error::Encode { .. })),
                "{quality} {method}"
            );
        }
        let short = Rgba8 {
            data: image.data[4..].to_vec(),
            ..image.clone()
        };
        assert!(encode_lossy(&short, 80.0, false, 4, None).is_err());
        for (width, height) in [(0, 0), (16384, 1)] {
            let wide = Rgba8 {
                width,
                height,
                data: vec![255; width as usize * height as usize * 4],
            };
            assert!(encode_lossy(&wide, 80.0, false, 4, None).is_err());
        }
    }

    #[test]
    fn lossless_rewrap_keeps_the_profile() {
        let image = photo(16, 8, |x, _| if x == 0 { 0 } else { 255 });
        let frame = image.to_frame();
        let encoded = encode_lossless(&frame, 1, &Deadline::new(None)).unwrap();
        let input = with_icc(&encoded, &image, &profile(64)).unwrap();
        assert_eq!(kinds(&input), [*b"VP8X", *b"ICCP", *b"VP8L"]);
        let out = wrap(
            &chunks(&input).unwrap(),
            &encoded,
            &frame,
            Metadata::Essential,
        )
        .unwrap();
        assert_eq!(out, input);
        assert!(decode_display(&out).unwrap().samples.data == image.data);
    }
}
