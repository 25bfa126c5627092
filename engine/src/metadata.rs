//! EXIF orientation: read it from a TIFF-structured EXIF block, write a block holding only it.

/// Orientation (tag 0x0112) from IFD0 of a raw EXIF block ("II*\0" or "MM\0*" first).
pub(crate) fn exif_orientation(tiff: &[u8]) -> Option<u16> {
    let big = match tiff.get(..4)? {
        b"MM\0*" => true,
        b"II*\0" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at + 2)?;
        Some(if big {
            u16::from_be_bytes([b[0], b[1]])
        } else {
            u16::from_le_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at + 4)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd + 2 + i * 12;
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3).then(|| u16_at(entry + 8))?
    })
}

/// A big-endian EXIF block with one IFD0 entry: the orientation.
pub(crate) fn exif_with_orientation(orientation: u16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"MM\0*");
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&0x0112u16.to_be_bytes());
    out.extend_from_slice(&3u16.to_be_bytes());
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&orientation.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&0u32.to_be_bytes());
    out
}

/// The EXIF block to write under [`Metadata::Essential`](crate::Metadata::Essential): only a
/// non-default orientation survives.
pub(crate) fn essential_exif(tiff: &[u8]) -> Option<Vec<u8>> {
    exif_orientation(tiff)
        .filter(|o| (2..=8).contains(o))
        .map(exif_with_orientation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orientation_round_trips() {
        for o in 1..=8 {
            assert_eq!(exif_orientation(&exif_with_orientation(o)), Some(o));
        }
        assert_eq!(essential_exif(&exif_with_orientation(1)), None);
        assert!(essential_exif(&exif_with_orientation(6)).is_some());
    }

    #[test]
    fn little_endian_and_garbage() {
        let mut le = b"II*\0\x08\0\0\0\x02\0".to_vec();
        le.extend_from_slice(&[0x0f, 0x01, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0]);
        le.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(exif_orientation(&le), Some(3));
        assert_eq!(exif_orientation(b"MM\0*\xff\xff\xff\xff"), None);
        assert_eq!(exif_orientation(b""), None);
    }
}
