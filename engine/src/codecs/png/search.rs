//! Filter search on a still, non-interlaced PNG: every strategy is ranked by a quick deflate,
//! the best few are deflated at libdeflate's strongest level, and the IDAT is replaced when
//! the result is smaller.

use std::io::Cursor;

use libdeflater::Decompressor;
use rayon::prelude::*;

use super::deflate::zlib;
use super::filter::{self, Rows, Strategy};
use super::{chunks, idat, malformed, write_chunk};
use crate::error::Result;
use crate::work::{Deadline, room_for, zeroed};

/// libdeflate's lazy matching: fast enough to deflate every strategy. It ranks well but not
/// perfectly against the final level, hence more than one finalist.
const RANK_LEVEL: i32 = 8;
/// libdeflate's strongest level (near-optimal parsing).
const FINAL_LEVEL: i32 = 12;
/// How many of the best-ranked strategies are deflated at `FINAL_LEVEL`: one per core on the
/// two-core machines this is tuned for; a fixed number keeps output the same everywhere.
const FINALISTS: usize = 2;
/// Below this many pixels the brute-force strategy is skipped: its per-row deflates cost a
/// fixed setup each, more than the whole search on a small image, for a few bytes at most.
const BRUTE_MIN_PIXELS: u64 = 128 * 128;

/// The strategies tried on an image of `pixels`: every one, the brute-force one only from
/// `BRUTE_MIN_PIXELS`.
fn strategies(pixels: u64) -> Vec<Strategy> {
    let brute = (pixels >= BRUTE_MIN_PIXELS).then_some(Strategy::Brute { lines: 3, level: 1 });
    Strategy::HEURISTIC.into_iter().chain(brute).collect()
}

/// The image's unfiltered rows, or `None` for what the search does not handle (interlaced,
/// animated).
fn raw_rows(png: &[u8], pixels: u64) -> Result<Option<(Vec<u8>, usize, usize)>> {
    let mut decoder = png::Decoder::new_with_limits(
        Cursor::new(png),
        png::Limits {
            bytes: usize::try_from(pixels.saturating_mul(8).saturating_add(1 << 20))
                .unwrap_or(usize::MAX),
        },
    );
    decoder.set_transformations(png::Transformations::IDENTITY);
    let mut reader = decoder.read_info().map_err(malformed)?;
    let info = reader.info();
    if info.interlaced || info.animation_control.is_some() {
        return Ok(None);
    }
    let bits = info.color_type.samples() * info.bit_depth as usize;
    let bpp = bits.div_ceil(8);
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| malformed("frame buffer size overflows"))?;
    let mut data = zeroed(size)?;
    let frame = reader.next_frame(&mut data).map_err(malformed)?;
    data.truncate(frame.buffer_size());
    Ok(Some((data, frame.line_size, bpp)))
}

/// A smaller encoding of `png` with a better filter, or `None` when there is none. `fresh`
/// says that `png`'s stream was just deflated at level 12, so its filtering is not tried again.
pub(super) fn refilter(
    png: &[u8],
    fresh: bool,
    pixels: u64,
    deadline: &Deadline,
) -> Result<Option<(Vec<u8>, Strategy)>> {
    let Some((data, stride, bpp)) = raw_rows(png, pixels)? else {
        return Ok(None);
    };
    let rows = Rows {
        data: &data,
        stride,
        bpp,
    };
    let strategies = strategies(pixels);
    // Ranked by size only: filtering again is cheap next to deflating, and keeping no rows
    // between the stages keeps the peak at one filtered copy a thread.
    let ranked = strategies
        .par_iter()
        .enumerate()
        .with_max_len(1)
        .map(|(index, &strategy)| {
            deadline.check()?;
            let filtered = filter::apply(&rows, strategy)?;
            Ok((zlib(&filtered, RANK_LEVEL).len(), index))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut finalists = ranked;
    finalists.sort_unstable();
    finalists.truncate(FINALISTS);
    // The input's own stream already holds one filtering at its level; skip deflating it again.
    let current = fresh
        .then(|| image_data(png, data.len() / stride * (stride + 1)))
        .flatten();
    let winner = finalists
        .par_iter()
        .with_max_len(1)
        .map(|&(_, index)| {
            deadline.check()?;
            let filtered = filter::apply(&rows, strategies[index])?;
            if current.as_ref() == Some(&filtered) {
                return Ok(None);
            }
            Ok(Some((zlib(&filtered, FINAL_LEVEL), index)))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .min_by_key(|(stream, index)| (stream.len(), *index));
    let Some((stream, index)) = winner else {
        return Ok(None);
    };
    let output = replace_idat(png, &stream)?;
    Ok((output.len() < png.len()).then(|| (output, strategies[index])))
}

/// The inflated IDAT stream of `png` when it is `len` bytes long.
fn image_data(png: &[u8], len: usize) -> Option<Vec<u8>> {
    let stream = idat(png).collect::<Vec<_>>().concat();
    let mut out = vec![0; len];
    let written = Decompressor::new()
        .zlib_decompress(&stream, &mut out)
        .ok()?;
    (written == len).then_some(out)
}

/// `png` with its IDAT chunks replaced by one holding `stream`.
fn replace_idat(png: &[u8], stream: &[u8]) -> Result<Vec<u8>> {
    let mut out = room_for(png.len())?;
    out.extend_from_slice(&png[..8]);
    let mut written = false;
    for chunk in chunks(png) {
        let chunk = chunk?;
        if &chunk.kind != b"IDAT" {
            out.extend_from_slice(chunk.raw);
        } else if !written {
            write_chunk(&mut out, b"IDAT", stream)?;
            written = true;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `rows`, 8-bit RGB, every row unfiltered and barely deflated, split over
    /// several IDAT chunks.
    fn plain_png(width: u32, height: u32, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, width, height);
            encoder.set_color(png::ColorType::Rgb);
            encoder.set_filter(png::Filter::NoFilter);
            encoder.set_compression(png::Compression::Fastest);
            let mut writer = encoder.write_header().expect("header");
            let mut stream = writer.stream_writer_with_size(4096).expect("stream");
            std::io::Write::write_all(&mut stream, data).expect("rows");
            stream.finish().expect("finish");
        }
        out
    }

    fn pixels(png: &[u8]) -> Vec<u8> {
        let decoder = png::Decoder::new(Cursor::new(png));
        let mut reader = decoder.read_info().expect("info");
        let mut buffer = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buffer).expect("frame");
        buffer.truncate(info.buffer_size());
        buffer
    }

    #[test]
    fn a_better_filter_gives_a_smaller_png_with_the_same_pixels() {
        let (width, height) = (160u32, 120u32);
        let data: Vec<u8> = (0..width * height * 3)
            .map(|i| {
                let (x, y, c) = ((i / 3) % width, (i / 3) / width, i % 3);
                (x * 3 + y * 2 + c * 40 + (x * y) % 7) as u8
            })
            .collect();
        let input = plain_png(width, height, &data);
        let deadline = Deadline::new(None);
        assert_eq!(
            strategies(u64::from(width * height)).len(),
            10,
            "brute force included"
        );
        let (output, strategy) = refilter(&input, false, 19_200, &deadline)
            .expect("search")
            .expect("a smaller result");
        assert!(
            output.len() < input.len() / 2,
            "{} -> {}",
            input.len(),
            output.len()
        );
        assert_ne!(strategy, Strategy::Fixed(0));
        assert_eq!(pixels(&output), data);
        let idats = chunks(&output)
            .filter_map(Result::ok)
            .filter(|c| &c.kind == b"IDAT")
            .count();
        assert_eq!(idats, 1);
    }

    #[test]
    fn interlaced_and_animated_pngs_are_left_as_they_are() {
        let deadline = Deadline::new(None);
        for bytes in [
            &include_bytes!("../../../../corpus/tiny/rgba16_interlaced_should_stay_exact.png")[..],
            &include_bytes!("../../../../corpus/tiny/apng_3frames_should_stay_animated.png")[..],
        ] {
            assert!(
                refilter(bytes, false, 1024, &deadline)
                    .expect("search")
                    .is_none()
            );
        }
    }
}
