//! GIF: the block structure read by hand for limits; frames decoded by the `gif` crate to
//! validate them. GIFs are kept as they are (no lossless re-encoder beats their LZW yet).

use crate::error::{Error, Result};
use crate::format::Format;
use crate::limits::{Header, Limits};

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Gif, reason)
}

fn le16(bytes: &[u8], at: usize) -> Result<u32> {
    bytes
        .get(at..at + 2)
        .map(|b| u32::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or_else(|| malformed("truncated"))
}

/// Skips a run of data sub-blocks; returns the position after the terminator and the bytes.
fn skip_sub_blocks(bytes: &[u8], mut pos: usize) -> Result<(usize, u64)> {
    let mut total = 0u64;
    loop {
        let len = usize::from(
            *bytes
                .get(pos)
                .ok_or_else(|| malformed("truncated data block"))?,
        );
        pos += 1;
        if len == 0 {
            return Ok((pos, total));
        }
        total += len as u64;
        pos += len;
    }
}

pub(super) fn probe(bytes: &[u8]) -> Result<Header> {
    let width = le16(bytes, 6)?;
    let height = le16(bytes, 8)?;
    if width == 0 || height == 0 {
        return Err(malformed(format!(
            "zero-sized logical screen {width}x{height}"
        )));
    }
    let mut header = Header {
        width,
        height,
        ..Header::default()
    };
    let flags = *bytes.get(10).ok_or_else(|| malformed("truncated"))?;
    let mut pos = 13 + color_table_len(flags);
    loop {
        match bytes.get(pos) {
            Some(0x3B) => break,
            Some(0x21) => {
                let label = *bytes.get(pos + 1).ok_or_else(|| malformed("truncated"))?;
                let (next, len) = skip_sub_blocks(bytes, pos + 2)?;
                if matches!(label, 0xFE | 0xFF) {
                    header.metadata_bytes += len;
                }
                pos = next;
            }
            Some(0x2C) => {
                header.add_frame(le16(bytes, pos + 5)?, le16(bytes, pos + 7)?);
                let flags = *bytes.get(pos + 9).ok_or_else(|| malformed("truncated"))?;
                // Descriptor (10), local colour table, LZW minimum code size (1).
                pos = skip_sub_blocks(bytes, pos + 10 + color_table_len(flags) + 1)?.0;
            }
            // Many encoders end without a trailer; decoders accept it.
            None if header.frames > 0 => break,
            Some(_) | None => return Err(malformed(format!("unexpected block at byte {pos}"))),
        }
    }
    if header.frames == 0 {
        return Err(malformed("no image in the file"));
    }
    Ok(header)
}

fn color_table_len(flags: u8) -> usize {
    if flags & 0x80 == 0 {
        0
    } else {
        3 << ((flags & 0x07) + 1)
    }
}

/// Decodes every frame (indexed, never composited) and drops it.
pub(super) fn validate(bytes: &[u8], limits: &Limits) -> Result<()> {
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::Indexed);
    options.set_memory_limit(gif::MemoryLimit::Bytes(
        std::num::NonZeroU64::new(limits.max_pixels.max(1)).unwrap_or(std::num::NonZeroU64::MIN),
    ));
    let mut decoder = options.read_info(bytes).map_err(malformed)?;
    while decoder.read_next_frame().map_err(malformed)?.is_some() {}
    Ok(())
}
