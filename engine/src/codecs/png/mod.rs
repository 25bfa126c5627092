//! PNG and APNG: oxipng with effort chosen per image, frames decoded with the `png` crate.

use std::io::Cursor;
use std::time::Duration;

use oxipng::{Deflater, FilterStrategy, StripChunks, indexset};

mod deflate;
mod filter;
mod search;

use super::Attempt;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::limits::{Header, Limits};
use crate::metadata::{essential_exif, exif_orientation};
use crate::options::{Metadata, Options};
use crate::work::{Deadline, zeroed};

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Png, reason)
}

/// One chunk: its type and data (CRC not checked here; the decoder checks it).
struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    /// The whole chunk: length, type, data and CRC.
    raw: &'a [u8],
}

/// Walks the chunks after the signature up to and including `IEND`.
fn chunks(bytes: &[u8]) -> impl Iterator<Item = Result<Chunk<'_>>> {
    let mut pos = Some(8usize);
    std::iter::from_fn(move || {
        let at = pos?;
        let result = (|| {
            let head = bytes
                .get(at..at + 8)
                .ok_or_else(|| malformed("truncated: no IEND chunk"))?;
            let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            if len > i32::MAX as u32 {
                return Err(malformed(format!("chunk length {len} is over 2^31-1")));
            }
            let kind = [head[4], head[5], head[6], head[7]];
            let end = at + 12 + len as usize;
            let data = bytes
                .get(at + 8..end - 4)
                .filter(|_| end <= bytes.len())
                .ok_or_else(|| malformed("truncated: a chunk runs past the end"))?;
            let raw = &bytes[at..end];
            Ok((Chunk { kind, data, raw }, end))
        })();
        match result {
            Ok((chunk, end)) => {
                pos = (&chunk.kind != b"IEND").then_some(end);
                Some(Ok(chunk))
            }
            Err(e) => {
                pos = None;
                Some(Err(e))
            }
        }
    })
}

/// The image data stream, chunk by chunk.
fn idat(png: &[u8]) -> impl Iterator<Item = &[u8]> {
    chunks(png)
        .filter_map(Result::ok)
        .filter(|c| &c.kind == b"IDAT")
        .map(|c| c.data)
}

/// Appends a chunk: length, type, data and CRC.
fn write_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) -> Result<()> {
    let len = u32::try_from(data.len())
        .ok()
        .filter(|&len| len <= i32::MAX as u32)
        .ok_or_else(|| malformed(format!("a {} byte chunk is over 2^31-1", data.len())))?;
    let start = out.len();
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32fast::hash(&out[start + 4..]);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn be32(data: &[u8], at: usize) -> Result<u32> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| malformed("chunk too short"))
}

/// Size of a zlib stream once inflated, stopping with a limit error past `max`.
fn inflated_len(stream: &[u8], max: u64) -> Result<u64> {
    let cap = usize::try_from(max.saturating_add(1)).unwrap_or(usize::MAX);
    match miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(stream, cap) {
        Ok(data) => Ok(data.len() as u64),
        Err(e) if e.status == miniz_oxide::inflate::TINFLStatus::HasMoreOutput => Ok(max + 1),
        // A broken ancillary stream is ignored by decoders; count its compressed size.
        Err(_) => Ok(stream.len() as u64),
    }
}

/// Bytes of compressed text or profile data after a keyword and its terminator.
fn after_keyword(data: &[u8], skip: usize) -> &[u8] {
    let start = data
        .iter()
        .position(|&b| b == 0)
        .map_or(data.len(), |p| p + 1 + skip);
    data.get(start..).unwrap_or_default()
}

/// The chunks that say how the pixels are shown, the first of each kind before `IDAT`.
#[derive(Default)]
struct ColourChunks<'a> {
    cicp: Option<&'a [u8]>,
    iccp: Option<&'a [u8]>,
    srgb: Option<&'a [u8]>,
    gama: Option<&'a [u8]>,
    chrm: Option<&'a [u8]>,
}

impl<'a> ColourChunks<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        let mut found = Self::default();
        for chunk in chunks(bytes).map_while(Result::ok) {
            let slot = match &chunk.kind {
                b"cICP" => &mut found.cicp,
                b"iCCP" => &mut found.iccp,
                b"sRGB" => &mut found.srgb,
                b"gAMA" => &mut found.gama,
                b"cHRM" => &mut found.chrm,
                b"IDAT" => break,
                _ => continue,
            };
            slot.get_or_insert(chunk.data);
        }
        found
    }
}

/// How the image is shown, as viewers take the chunks.
enum Shown<'a> {
    /// As sRGB: no profile.
    Srgb,
    /// Through the `iCCP` chunk's profile, still compressed.
    Stored(&'a [u8]),
    /// Through a profile made from the chunks.
    Made(Vec<u8>),
}

/// How the image is shown (see [`Shown`]): a `cICP` first (Display P3's profile or sRGB, see
/// [`crate::colour::coded`]), then `iCCP`, then `sRGB`, then `gAMA` and `cHRM` made into a
/// profile when they are not sRGB's (see
/// [`crate::colour::gamma_and_chromaticities`]). The error says why the pixels are not shown
/// here: colour `cICP` names that is not (HDR, BT.2020), or `gAMA` and `cHRM` values that
/// make no profile.
fn shown_with(bytes: &[u8]) -> Result<Shown<'_>, String> {
    let found = ColourChunks::of(bytes);
    if let Some(&[primaries, transfer, ..]) = found.cicp {
        return crate::colour::coded(primaries.into(), transfer.into())
            .map(|made| made.map_or(Shown::Srgb, Shown::Made));
    }
    if let Some(iccp) = found.iccp {
        return Ok(Shown::Stored(iccp));
    }
    if found.srgb.is_some() {
        return Ok(Shown::Srgb);
    }
    // Values times 100,000, as the chunks store them.
    let values = |data: &[u8]| -> Vec<u32> {
        data.chunks_exact(4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    // sRGB's 1/2.2 within libpng's 5 % is taken as sRGB's curve.
    let gamma = match found.gama.map(values).as_deref() {
        None | Some([43_182..=47_728]) => None,
        Some(&[g]) if g > 0 => Some(100_000.0 / f64::from(g)),
        Some(_) => return Err("its gamma (gAMA) is not a valid one".into()),
    };
    // White point, red, green, blue (x, y); within 0.01 of sRGB's is taken as sRGB's.
    const SRGB: [u32; 8] = [
        31_270, 32_900, 64_000, 33_000, 30_000, 60_000, 15_000, 6_000,
    ];
    let chromaticities = match found.chrm.map(values).as_deref() {
        None => None,
        Some(c) if c.len() == 8 && c.iter().zip(SRGB).all(|(v, s)| v.abs_diff(s) <= 1_000) => None,
        Some(&[wx, wy, rx, ry, gx, gy, bx, by]) => {
            Some([wx, wy, rx, ry, gx, gy, bx, by].map(|v| f64::from(v) / 1e5))
        }
        Some(_) => return Err("its chromaticities (cHRM) are not valid ones".into()),
    };
    if gamma.is_none() && chromaticities.is_none() {
        return Ok(Shown::Srgb);
    }
    crate::colour::gamma_and_chromaticities(gamma, chromaticities)
        .map(Shown::Made)
        .ok_or_else(|| "its gamma and chromaticities (gAMA, cHRM) make no colour profile".into())
}

/// The ICC profile the image is shown with (see [`shown_with`]); `iCCP`'s inflated (its size
/// was checked against the metadata limit from the header).
pub(crate) fn icc(bytes: &[u8]) -> Option<Vec<u8>> {
    match shown_with(bytes).ok()? {
        Shown::Srgb => None,
        Shown::Stored(iccp) => {
            miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(after_keyword(iccp, 1), 1 << 26)
                .ok()
        }
        Shown::Made(profile) => Some(profile),
    }
}

/// Why the decoded pixels cannot be shown as a viewer shows them, when they cannot (see
/// [`shown_with`]); an `iCCP` profile is not inflated for it.
pub(crate) fn not_shown(bytes: &[u8]) -> Option<String> {
    shown_with(bytes).err()
}

/// The EXIF orientation from `eXIf` (1 when absent).
pub(crate) fn orientation(bytes: &[u8]) -> u16 {
    chunks(bytes)
        .map_while(Result::ok)
        .find(|c| &c.kind == b"eXIf")
        .and_then(|c| exif_orientation(c.data))
        .unwrap_or(1)
}

/// Bytes per pixel once decoded with `EXPAND` (palette to RGB, low bit depths to 8, `tRNS`
/// to an alpha channel), from IHDR; an alpha channel is assumed, as `tRNS` may follow.
fn decoded_bytes_per_pixel(ihdr: &[u8]) -> u8 {
    let sample = if ihdr.get(8) == Some(&16) { 2 } else { 1 };
    match ihdr.get(9) {
        Some(0 | 4) => 2 * sample,
        _ => 4 * sample,
    }
}

pub(super) fn probe(bytes: &[u8], limits: &Limits) -> Result<Header> {
    let mut header: Option<Header> = None;
    let mut declared_frames = 0u64;
    let mut metadata = 0u64;
    for chunk in chunks(bytes) {
        let chunk = chunk?;
        let room = limits.max_metadata_bytes.saturating_sub(metadata);
        match &chunk.kind {
            b"IHDR" => {
                let (width, height) = (be32(chunk.data, 0)?, be32(chunk.data, 4)?);
                if width == 0 || height == 0 {
                    return Err(malformed(format!("zero-sized image {width}x{height}")));
                }
                let mut still = Header::still(width, height);
                still.bytes_per_pixel = decoded_bytes_per_pixel(chunk.data);
                header = Some(still);
            }
            b"acTL" => declared_frames = be32(chunk.data, 0)?.into(),
            b"fcTL" => {
                let header = header
                    .as_mut()
                    .ok_or_else(|| malformed("fcTL before IHDR"))?;
                let (width, height) = (be32(chunk.data, 4)?, be32(chunk.data, 8)?);
                header.add_frame(width, height);
            }
            b"iCCP" | b"zTXt" => metadata += inflated_len(after_keyword(chunk.data, 1), room)?,
            b"iTXt"
                if chunk
                    .data
                    .iter()
                    .position(|&b| b == 0)
                    .and_then(|p| chunk.data.get(p + 1))
                    == Some(&1) =>
            {
                let rest = after_keyword(chunk.data, 2);
                let rest = after_keyword(rest, 0);
                metadata += inflated_len(after_keyword(rest, 0), room)?;
            }
            b"iTXt" | b"tEXt" | b"eXIf" => metadata += chunk.data.len() as u64,
            _ => {}
        }
        limits.check_metadata(metadata)?;
    }
    let mut header = header.ok_or_else(|| malformed("no IHDR chunk"))?;
    header.frames = header.frames.max(declared_frames);
    header.metadata_bytes = metadata;
    Ok(header)
}

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Vec<Frame>> {
    let cap = limits
        .max_pixels
        .saturating_mul(8)
        .saturating_add(limits.max_metadata_bytes);
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(bytes),
        png::Limits {
            bytes: usize::try_from(cap).unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::EXPAND);
    let mut reader = decoder.read_info().map_err(malformed)?;
    let count = match reader.info().animation_control {
        Some(actl) => u64::from(actl.num_frames) + u64::from(reader.info().frame_control.is_none()),
        None => 1,
    };
    let count = count.min(limits.max_frames + 1);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| malformed("frame buffer size overflows"))?;
    let mut buffer = zeroed(size)?;
    let mut frames = Vec::new();
    for index in 0..count {
        let info = reader.next_frame(&mut buffer).map_err(malformed)?;
        let control = reader.info().frame_control.map_or([0; 6], |fc| {
            [
                fc.x_offset,
                fc.y_offset,
                fc.delay_num.into(),
                fc.delay_den.into(),
                fc.dispose_op as u32,
                fc.blend_op as u32,
            ]
        });
        let channels = info.color_type.samples() as u8;
        let sixteen = info.bit_depth == png::BitDepth::Sixteen;
        // The last frame (a still's only one) keeps the buffer rather than a copy of it.
        let data = if index + 1 == count {
            buffer.truncate(info.buffer_size());
            std::mem::take(&mut buffer)
        } else {
            let mut data = zeroed(info.buffer_size())?;
            data.copy_from_slice(&buffer[..info.buffer_size()]);
            data
        };
        let samples = Samples::new(channels, sixteen, data);
        frames.push(Frame {
            width: info.width,
            height: info.height,
            control,
            samples,
        });
    }
    Ok(frames)
}

/// How hard one image is worked on. Every effort from `Fast` up starts with oxipng's preset
/// 2, the same work as `oxipng -o 2`, so that no effort from `Fast` up gives a bigger file;
/// the stronger efforts then try to beat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Effort {
    /// oxipng preset 0: two filters, libdeflate level 5. For images `Fast` cannot do in time.
    Quick,
    /// oxipng preset 2: four filters picked by a fast trial, libdeflate level 11.
    Fast,
    /// `Fast`, then six filters (None, Sub, MinSum, Entropy, Bigrams, BigEnt) picked by a fast
    /// trial, libdeflate level 12.
    Standard,
    /// `Fast`, then oxipng's most thorough colour type, bit depth and palette reductions and
    /// the filter search of `search.rs`.
    Search,
}

impl Effort {
    const ALL: [Self; 4] = [Self::Search, Self::Standard, Self::Fast, Self::Quick];

    /// Seconds per megabyte of decoded pixels on one core, the most measured over the PNG
    /// corpus in a release build (`taskset -c 0`; README, "Time budget"), rounded up. Only
    /// used to pick an effort, so the output does not depend on the clock. `stored` is the
    /// input's size over its decoded size: libdeflate's strong levels, most of `Fast`'s
    /// work, go quickly through images that compress well.
    fn seconds_per_megabyte(self, stored: f64) -> f64 {
        match self {
            Self::Quick => 0.08,
            Self::Fast => (0.02 + 3.5 * stored).min(0.32),
            Self::Standard => 1.1,
            Self::Search => 2.0,
        }
    }

    /// The highest effort whose estimate fits the budget; `Quick` when none does.
    fn for_image(decoded_bytes: u64, stored_bytes: usize, budget: Duration) -> Self {
        let megabytes = decoded_bytes as f64 / 1e6;
        let stored = stored_bytes as f64 / decoded_bytes.max(1) as f64;
        Self::ALL
            .into_iter()
            .find(|e| {
                FIXED_SECONDS + e.seconds_per_megabyte(stored) * megabytes <= budget.as_secs_f64()
            })
            .unwrap_or(Self::Quick)
    }

    /// oxipng's options for this effort's own stage. Before a search, oxipng only reduces
    /// (two filters ranked by a quick deflate, the input's stream kept when nothing is
    /// reduced): the search picks the filter. An APNG, which the search does not take, is
    /// deflated at level 12 there.
    fn oxipng(self, animated: bool) -> oxipng::Options {
        let mut options = oxipng::Options::from_preset(2);
        match self {
            Self::Quick => options = oxipng::Options::from_preset(0),
            Self::Fast => {}
            Self::Standard => {
                options.deflater = Deflater::Libdeflater { compression: 12 };
                options.filters = indexset! {
                    FilterStrategy::NONE, FilterStrategy::SUB, FilterStrategy::MinSum,
                    FilterStrategy::Entropy, FilterStrategy::Bigrams, FilterStrategy::BigEnt,
                };
            }
            Self::Search => {
                // Level 12 also selects oxipng's most thorough reductions.
                options.deflater = Deflater::Libdeflater { compression: 12 };
                options.filters = indexset! { FilterStrategy::NONE, FilterStrategy::Bigrams };
                options.idat_recoding = animated;
            }
        }
        options
    }
}

/// Seconds any PNG costs on one core whatever its size (reading, chunk walks, set-up).
const FIXED_SECONDS: f64 = 0.02;

/// Chunks kept under each metadata policy. APNG control chunks always stay.
fn strip(metadata: Metadata) -> StripChunks {
    match metadata {
        Metadata::All => StripChunks::None,
        Metadata::Essential => StripChunks::Keep(indexset! {
            *b"cICP", *b"iCCP", *b"sRGB", *b"gAMA", *b"cHRM", *b"mDCV", *b"cLLI",
            *b"acTL", *b"fcTL", *b"fdAT",
        }),
        Metadata::None => StripChunks::Keep(indexset! { *b"acTL", *b"fcTL", *b"fdAT" }),
    }
}

/// The effort for `options`: from the budget, at most `Fast` when [`Options::quick`].
fn effort(bytes: &[u8], header: &Header, options: &Options) -> Effort {
    let effort = Effort::for_image(header.decoded_bytes(), bytes.len(), options.time_budget);
    if options.quick {
        effort.min(Effort::Fast)
    } else {
        effort
    }
}

/// Whether [`Options::quick`] lowers the effort for `options`: the budget's is above `Fast`.
pub(super) fn quick_is_less(bytes: &[u8], header: &Header, options: &Options) -> bool {
    Effort::for_image(header.decoded_bytes(), bytes.len(), options.time_budget) > Effort::Fast
}

pub(super) fn optimize(
    bytes: &[u8],
    header: &Header,
    options: &Options,
    deadline: &Deadline,
) -> Result<Attempt> {
    let effort = effort(bytes, header, options);
    let animated = header.frames > 1;
    let keep_depth = sixteen_bit_key(bytes);
    let oxipng = |effort: Effort| {
        let mut oxi = effort.oxipng(animated);
        oxi.strip = strip(options.metadata);
        // oxipng 10 halves a 16-bit image whose pixels allow it but keeps the tRNS key as
        // it is, so a key with unequal bytes turns opaque pixels transparent.
        oxi.bit_depth_reduction &= !keep_depth;
        // Raw image data is at most 8 bytes a pixel plus a filter byte a row and pass. oxipng
        // inflates the ICC profile under the same cap, or leaves it as it is: add the
        // metadata's inflated size, checked against the limits already.
        let raw = header.total_pixels.saturating_mul(8)
            + u64::from(header.height) * 8
            + header.metadata_bytes
            + 1024;
        oxi.max_decompressed_size = usize::try_from(raw).ok();
        oxi.timeout = deadline.remaining();
        oxipng::optimize_from_memory(bytes, &oxi)
    };
    let mut actions = vec![format!("png: {effort:?} effort")];
    let first = if effort == Effort::Quick {
        Effort::Quick
    } else {
        Effort::Fast
    };
    let mut best = match oxipng(first) {
        Ok(data) => data,
        Err(e) => return Ok(Attempt::unchanged(format!("png: oxipng declined: {e}"))),
    };
    if effort > Effort::Fast && deadline.check().is_err() {
        actions.push("png: cut by the time budget".into());
    } else if effort > Effort::Fast {
        match stronger(bytes, header, effort, oxipng(effort), deadline) {
            Ok(Some(smaller)) if smaller.len() < best.len() => {
                best = smaller;
                actions.push(format!("png: {effort:?} beat oxipng's preset 2"));
            }
            Ok(_) => actions.push("png: oxipng's preset 2 stands".into()),
            // The preset-2 result stands; the guard still checks it.
            Err(Error::Deadline(_)) => actions.push("png: cut by the time budget".into()),
            Err(e) => return Err(e),
        }
    }
    if options.metadata == Metadata::Essential {
        best = keep_orientation(bytes, best)?;
    }
    Ok(Attempt {
        data: Some(best),
        actions,
    })
}

/// The stronger effort's result: oxipng's own stage, then for `Search` on a still the filter
/// search over it.
fn stronger(
    input: &[u8],
    header: &Header,
    effort: Effort,
    oxipng: oxipng::PngResult<Vec<u8>>,
    deadline: &Deadline,
) -> Result<Option<Vec<u8>>> {
    let Ok(reduced) = oxipng else {
        return Ok(None);
    };
    if effort != Effort::Search || header.frames > 1 {
        return Ok(Some(reduced));
    }
    let fresh = recoded(input, &reduced);
    Ok(Some(
        search::refilter(&reduced, fresh, header.total_pixels, deadline)?
            .map_or(reduced, |(smaller, _)| smaller),
    ))
}

/// Whether `png` is 16-bit with a tRNS colour key that has no 8-bit equal (a sample whose two
/// bytes differ).
fn sixteen_bit_key(png: &[u8]) -> bool {
    let mut sixteen = false;
    for chunk in chunks(png).filter_map(Result::ok) {
        match &chunk.kind {
            b"IHDR" => sixteen = chunk.data.get(8) == Some(&16),
            b"tRNS" if sixteen => return chunk.data.chunks(2).any(|s| s.first() != s.last()),
            b"IDAT" => return false,
            _ => {}
        }
    }
    false
}

/// Whether oxipng wrote a new image data stream rather than keeping the input's (perhaps in
/// differently split chunks).
fn recoded(input: &[u8], output: &[u8]) -> bool {
    !idat(input).flatten().eq(idat(output).flatten())
}

/// Writes back an `eXIf` chunk holding only the orientation, when the input had one.
fn keep_orientation(input: &[u8], mut output: Vec<u8>) -> Result<Vec<u8>> {
    let mut orientation = None;
    for chunk in chunks(input) {
        let chunk = chunk?;
        if &chunk.kind == b"eXIf" {
            orientation = essential_exif(chunk.data);
        }
    }
    let Some(exif) = orientation else {
        return Ok(output);
    };
    let already = chunks(&output)
        .filter_map(Result::ok)
        .any(|c| &c.kind == b"eXIf" && exif_orientation(c.data).is_some());
    if already {
        return Ok(output);
    }
    // After the signature (8) and IHDR (25 bytes).
    let mut chunk = Vec::new();
    write_chunk(&mut chunk, b"eXIf", &exif)?;
    output.splice(33..33, chunk);
    Ok(output)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past the deadline, the stronger stage is skipped and oxipng's preset-2 result (here,
    /// with no time for a trial, the input re-chunked) is still the candidate for the guard.
    #[test]
    fn a_search_cut_by_the_deadline_keeps_the_candidate_so_far() {
        let png = include_bytes!("../../../../corpus/tiny/rgba8_stored_should_shrink.png");
        let header = probe(png, &Limits::default()).unwrap();
        let deadline = Deadline::new(Some(Duration::from_nanos(1)));
        std::thread::sleep(Duration::from_millis(1));
        let attempt = optimize(png, &header, &Options::default(), &deadline).unwrap();
        assert!(
            attempt
                .actions
                .iter()
                .any(|a| a.contains("cut by the time budget")),
            "{:?}",
            attempt.actions
        );
        assert!(attempt.data.is_some());
    }

    /// A 1x1 RGB 16-bit PNG, pixel 0x0A0A each, tRNS key 0x000A each: the pixel is opaque.
    /// `oxipng -o 2` makes it an 8-bit grey of 10 with key 10, a transparent pixel.
    #[test]
    fn a_sixteen_bit_colour_key_keeps_its_depth() {
        let mut png = Vec::new();
        let mut encoder = png::Encoder::new(&mut png, 1, 1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Sixteen);
        encoder.set_trns(vec![0, 10, 0, 10, 0, 10]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[10; 6]).unwrap();
        writer.finish().unwrap();
        assert!(sixteen_bit_key(&png));
        let out = crate::optimize(&png, &Options::default()).unwrap();
        assert!(out.worst() < crate::Level::Error, "{:?}", out.notes);
    }

    /// A 4x4 RGB PNG of one grey.
    fn grey_rgb() -> Vec<u8> {
        let mut plain = Vec::new();
        let mut encoder = png::Encoder::new(&mut plain, 4, 4);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[90; 48]).unwrap();
        writer.finish().unwrap();
        plain
    }

    /// `plain` with a chunk inserted after IHDR.
    fn with_chunk(plain: &[u8], kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
        let mut chunk = Vec::new();
        write_chunk(&mut chunk, kind, data).unwrap();
        let mut input = plain.to_vec();
        input.splice(33..33, chunk);
        input
    }

    /// oxipng inflates the ICC profile under the cap set for the pixels; a profile bigger
    /// than a small image's pixels must still be recompressed, as `oxipng -o 2` does.
    #[test]
    fn an_icc_profile_bigger_than_the_pixels_is_recompressed() {
        let plain = grey_rgb();
        let profile: Vec<u8> = (0..3000u32).map(|i| (i % 7 * 31) as u8).collect();
        let mut iccp = b"test\0\0".to_vec();
        iccp.extend(miniz_oxide::deflate::compress_to_vec_zlib(&profile, 0));
        let input = with_chunk(&plain, b"iCCP", &iccp);
        let out = crate::optimize(&input, &Options::default()).unwrap();
        let stored = |png: &[u8]| {
            chunks(png)
                .filter_map(Result::ok)
                .find(|c| &c.kind == b"iCCP")
                .map(|c| c.data.len())
        };
        assert_eq!(icc(&out.data), Some(profile));
        assert!(stored(&out.data).unwrap() < iccp.len(), "{:?}", out.notes);
    }

    /// A `cICP` chunk names the colour before `iCCP`: sRGB's means no profile, Display P3's
    /// gives its profile, HDR (BT.2020 with PQ) is not shown here.
    #[test]
    fn a_cicp_chunk_names_the_colour() {
        let plain = grey_rgb();
        let tagged = |code: [u8; 4]| with_chunk(&plain, b"cICP", &code);
        assert_eq!((icc(&plain), not_shown(&plain)), (None, None));
        let srgb = tagged([1, 13, 0, 1]);
        assert_eq!((icc(&srgb), not_shown(&srgb)), (None, None));
        let p3 = tagged([12, 13, 0, 1]);
        assert_eq!(icc(&p3), crate::colour::display_p3());
        assert_eq!(not_shown(&p3), None);
        let hdr = tagged([9, 16, 0, 1]);
        assert_eq!(icc(&hdr), None);
        assert!(
            not_shown(&hdr)
                .unwrap()
                .contains("primaries 9, transfer 16")
        );
    }

    /// Without `cICP`, `iCCP` or `sRGB`, a `gAMA` and a `cHRM` other than sRGB's are made into
    /// the profile viewers show the pixels with; values that make none are named.
    #[test]
    fn gamma_and_chromaticities_other_than_srgb_make_a_profile() {
        use crate::colour::ToSrgb;
        let plain = grey_rgb();
        // The sRGB conversion of a grey of 90 shown through `png`'s profile.
        let shown = |png: &[u8]| {
            let frame = Frame::still(1, 1, Samples::new(3, false, vec![90; 3]));
            let shown = ToSrgb::new(icc(png).as_deref()).unwrap();
            shown.apply(frame).unwrap().samples.data[..3].to_vec()
        };
        let gamma = |g: u32| with_chunk(&plain, b"gAMA", &g.to_be_bytes());
        for g in [45_455, 45_000] {
            assert_eq!(
                (icc(&gamma(g)), not_shown(&gamma(g))),
                (None, None),
                "gAMA {g}"
            );
        }
        // Linear light: 90 / 255 of full light is sRGB's 160; gamma 1 / 0.35 is darker.
        let linear = gamma(100_000);
        assert_eq!(not_shown(&linear), None);
        let light = shown(&linear);
        assert!(light.iter().all(|&v| v.abs_diff(160) <= 1), "{light:?}");
        assert!(shown(&gamma(35_000))[0] < 90);
        for bad in [&[0, 1][..], &[0; 4]] {
            let reason = not_shown(&with_chunk(&plain, b"gAMA", bad)).unwrap();
            assert!(reason.contains("gAMA"), "{reason}");
        }
        // An sRGB, iCCP or cICP chunk comes before them, as viewers take it.
        for first in [
            with_chunk(&linear, b"sRGB", &[0]),
            with_chunk(&linear, b"cICP", &[1, 13, 0, 1]),
        ] {
            assert_eq!((icc(&first), not_shown(&first)), (None, None));
        }
        let chrm = |c: [u32; 8]| {
            let data: Vec<u8> = c.iter().flat_map(|v| v.to_be_bytes()).collect();
            with_chunk(&gamma(45_455), b"cHRM", &data)
        };
        let srgb = [
            31_270, 32_900, 64_000, 33_000, 30_000, 60_000, 15_000, 6_000,
        ];
        assert_eq!(icc(&chrm(srgb)), None);
        // A wide-gamut green: its grey stays grey (same white), its profile converts colours.
        let mut wide = srgb;
        wide[4..6].copy_from_slice(&[21_000, 71_000]);
        assert_eq!(not_shown(&chrm(wide)), None);
        assert!(ToSrgb::new(icc(&chrm(wide)).as_deref()).unwrap().converts());
        let grey = shown(&chrm(wide));
        assert!(grey.iter().all(|&v| v.abs_diff(90) <= 1), "{grey:?}");
        // A primary with y = 0, or primaries on one line, make no profile.
        let mut flat = srgb;
        flat[7] = 0;
        let mut line = srgb;
        line[2..8].copy_from_slice(&[20_000, 20_000, 30_000, 30_000, 40_000, 40_000]);
        for bad in [flat, line] {
            let reason = not_shown(&chrm(bad)).unwrap();
            assert!(reason.contains("cHRM"), "{reason}");
        }
    }

    #[test]
    fn effort_follows_size_and_budget() {
        let budget = Duration::from_secs(20);
        // Stored at a third of the decoded size: a photo-like PNG.
        let effort =
            |decoded: u64, budget| Effort::for_image(decoded, decoded as usize / 3, budget);
        assert_eq!(effort(10_000, budget), Effort::Search);
        // 2.3 MP gray and alpha (2 bytes a pixel), 8.3 MP RGB (4, alpha assumed).
        assert_eq!(effort(4_608_000, budget), Effort::Search);
        assert_eq!(effort(33_177_600, budget), Effort::Fast);
        assert_eq!(effort(500_000_000, budget), Effort::Quick);
        let second = Duration::from_secs(1);
        assert_eq!(effort(1_000_000, second), Effort::Fast);
        assert_eq!(effort(4_000_000, second), Effort::Quick);
    }

    #[test]
    fn fast_is_cheaper_for_images_that_compress_well() {
        // 9.2 MB decoded in 2 s: a flat wallpaper stored at 4% takes Fast, a noisy one Quick.
        let budget = Duration::from_secs(2);
        assert_eq!(Effort::for_image(9_216_000, 384_000, budget), Effort::Fast);
        assert_eq!(
            Effort::for_image(9_216_000, 1_000_000, budget),
            Effort::Quick
        );
        assert!(
            Effort::Fast.seconds_per_megabyte(1.0) <= Effort::Standard.seconds_per_megabyte(1.0)
        );
    }
}
