//! AVIF: the ISO-BMFF boxes read for image and track sizes. Re-encoding AV1 is lossy and the
//! engine has no AV1 decoder, so AVIF files pass through after the header checks.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::limits::Header;

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Avif, reason)
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
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
/// has an alpha item: 8-bit samples for 8-bit AV1, 16-bit (scaled to the full 16-bit range)
/// for 10 and 12-bit.
pub(crate) fn decode_display(
    bytes: &[u8],
    limits: &crate::limits::Limits,
) -> Result<crate::guard::Frame> {
    let _ = (bytes, limits);
    Err(malformed("decoder not written yet"))
}
