//! The primary item of an AVIF, read from its boxes: its type and the properties a viewer
//! applies when it shows the image (colour, rotation, mirroring, crop). `avif-parse` reads
//! the AV1 data but not these.

use super::avif::be32;

/// The child boxes of `data` as (type, body), up to the first that does not fit.
fn children(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some((kind, body, end)) = child(data, pos) {
        out.push((kind, body));
        pos = end;
    }
    out
}

/// The box at `pos`: its type, body and end.
fn child(data: &[u8], pos: usize) -> Option<([u8; 4], &[u8], usize)> {
    let kind = data.get(pos + 4..pos + 8)?.try_into().ok()?;
    let (size, head) = match be32(data, pos)? {
        0 => (data.len() - pos, 8),
        1 => {
            let large = data.get(pos + 8..pos + 16)?.try_into().ok()?;
            (usize::try_from(u64::from_be_bytes(large)).ok()?, 16)
        }
        n => (n as usize, 8),
    };
    let end = pos.checked_add(size).filter(|_| size >= head)?;
    Some((kind, data.get(pos + head..end)?, end))
}

fn find<'a>(boxes: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes.iter().find(|(k, _)| k == kind).map(|(_, body)| *body)
}

fn be16(data: &[u8], at: usize) -> Option<u16> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// The primary item: its type (`av01` for a coded image, `grid` for tiles, ...) and its
/// properties as (type, body), in the order its `ipma` entry lists them.
pub(super) struct Primary<'a> {
    pub kind: Option<[u8; 4]>,
    pub properties: Vec<([u8; 4], &'a [u8])>,
}

impl<'a> Primary<'a> {
    /// The primary item of `file`, or `None` when the boxes do not name one.
    pub fn of(file: &'a [u8]) -> Option<Self> {
        let meta = children(find(&children(file), b"meta")?.get(4..)?);
        let pitm = find(&meta, b"pitm")?;
        let id = match pitm.first()? {
            0 => u32::from(be16(pitm, 4)?),
            _ => be32(pitm, 4)?,
        };
        let kind = find(&meta, b"iinf").and_then(|iinf| item_type(iinf, id));
        let properties = find(&meta, b"iprp")
            .and_then(|iprp| properties(&children(iprp), id))
            .unwrap_or_default();
        Some(Self { kind, properties })
    }

    /// The first property of a type.
    pub fn get(&self, kind: &[u8; 4]) -> Option<&'a [u8]> {
        find(&self.properties, kind)
    }

    /// The body of the `colr` property of a colour type (`nclx`, `prof` or `rICC`), after
    /// the type.
    pub fn colour(&self, kind: &[u8; 4]) -> Option<&'a [u8]> {
        self.properties
            .iter()
            .filter(|(k, _)| k == b"colr")
            .find_map(|(_, body)| body.strip_prefix(&kind[..]))
    }

    /// The ICC profile of the `colr` property (`prof`, or `rICC` as some writers name it).
    pub fn profile(&self) -> Option<&'a [u8]> {
        self.colour(b"prof").or_else(|| self.colour(b"rICC"))
    }

    /// Colour primaries, transfer characteristics, matrix coefficients (ITU-T H.273) and the
    /// full-range flag of the `nclx` colour property.
    pub fn nclx(&self) -> Option<(u16, u16, u16, bool)> {
        let body = self.colour(b"nclx")?;
        Some((
            be16(body, 0)?,
            be16(body, 2)?,
            be16(body, 4)?,
            body.get(6)? & 0x80 != 0,
        ))
    }

    /// The EXIF orientation (1 to 8) that turns the coded picture as the `irot` and `imir`
    /// properties do: rotation by `angle` × 90° anticlockwise, then mirroring, top and
    /// bottom exchanged for `imir` mode 0 (EXIF 4), left and right for mode 1 (EXIF 2).
    pub fn orientation(&self) -> u16 {
        let angle = self.get(b"irot").and_then(|b| b.first()).map(|a| a & 3);
        let mirror = self.get(b"imir").and_then(|b| b.first()).map(|m| m & 1);
        match (angle.unwrap_or(0), mirror) {
            (0, None) => 1,
            (0, Some(1)) | (2, Some(0)) => 2,
            (2, None) => 3,
            (0, Some(_)) | (2, Some(_)) => 4,
            (1, Some(0)) | (3, Some(1)) => 5,
            (3, None) => 6,
            (3, Some(_)) | (1, Some(_)) => 7,
            _ => 8,
        }
    }

    /// The `clap` crop as (x, y, width, height) of the coded picture, whose size `ispe`
    /// gives; the whole picture when there is no `clap`. `None` without an `ispe`, or when a
    /// side, an offset or an edge is not a whole pixel inside the picture.
    pub fn crop(&self) -> Option<(u32, u32, u32, u32)> {
        let ispe = self.get(b"ispe")?;
        let (width, height) = (be32(ispe, 4)?, be32(ispe, 8)?);
        let Some(clap) = self.get(b"clap") else {
            return Some((0, 0, width, height));
        };
        // In i128: a side times a denominator does not fit in i64.
        let at = |i: usize| be32(clap, 4 * i).map(i128::from);
        let whole = |n: i128, d: i128| (d > 0 && n % d == 0).then(|| n / d);
        let (cw, ch) = (whole(at(0)?, at(1)?)?, whole(at(2)?, at(3)?)?);
        // Offsets are signed, from the picture's centre to the crop's: the near edge is at
        // (size - crop) / 2 + offset.
        let edge = |size: u32, crop: i128, offset: i128, d: i128| {
            whole((i128::from(size) - crop) * d + 2 * offset, 2 * d)
        };
        let signed = |i: usize| be32(clap, 4 * i).map(|v| i128::from(v as i32));
        let x = edge(width, cw, signed(4)?, at(5)?)?;
        let y = edge(height, ch, signed(6)?, at(7)?)?;
        let inside = |edge: i128, crop: i128, size: u32| {
            edge >= 0 && crop > 0 && edge + crop <= i128::from(size)
        };
        (inside(x, cw, width) && inside(y, ch, height))
            .then_some((x as u32, y as u32, cw as u32, ch as u32))
    }
}

/// The type of item `id` in an `iinf` box (`infe` versions 2 and 3).
fn item_type(iinf: &[u8], id: u32) -> Option<[u8; 4]> {
    let entries = if iinf.first()? == &0 { 6 } else { 8 };
    children(iinf.get(entries..)?)
        .into_iter()
        .filter(|(kind, _)| kind == b"infe")
        .find_map(|(_, infe)| {
            let (item, at) = match infe.first()? {
                2 => (u32::from(be16(infe, 4)?), 8),
                3 => (be32(infe, 4)?, 10),
                _ => return None,
            };
            (item == id).then(|| infe.get(at..at + 4)?.try_into().ok())?
        })
}

/// The properties `ipma` associates with item `id`, in its order.
fn properties<'a>(iprp: &[([u8; 4], &'a [u8])], id: u32) -> Option<Vec<([u8; 4], &'a [u8])>> {
    let all = children(find(iprp, b"ipco")?);
    let ipma = find(iprp, b"ipma")?;
    let (version, wide_index) = (*ipma.first()?, ipma.get(3)? & 1 != 0);
    let mut out = Vec::new();
    let mut at = 8;
    for _ in 0..be32(ipma, 4)? {
        let item = if version == 0 {
            at += 2;
            u32::from(be16(ipma, at - 2)?)
        } else {
            at += 4;
            be32(ipma, at - 4)?
        };
        let count = *ipma.get(at)?;
        at += 1;
        for _ in 0..count {
            // 1-based property index; 0 means none.
            let index = if wide_index {
                at += 2;
                usize::from(be16(ipma, at - 2)? & 0x7fff)
            } else {
                at += 1;
                usize::from(ipma.get(at - 1)? & 0x7f)
            };
            if item == id
                && let Some(property) = index.checked_sub(1).and_then(|i| all.get(i))
            {
                out.push(*property);
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::{Frame, Samples};
    use crate::pixels::orient;

    /// `rows` turned by `angle` × 90° anticlockwise, then mirrored (mode 0: top and bottom
    /// exchanged; 1: left and right), as the AVIF properties describe it.
    fn turned(rows: Vec<Vec<u8>>, angle: u8, mirror: Option<u8>) -> Vec<Vec<u8>> {
        let mut rows = rows;
        for _ in 0..angle {
            let (h, w) = (rows.len(), rows[0].len());
            // The right column, read downwards, becomes the top row.
            rows = (0..w)
                .map(|i| (0..h).map(|j| rows[j][w - 1 - i]).collect())
                .collect();
        }
        match mirror {
            Some(0) => rows.reverse(),
            Some(_) => rows.iter_mut().for_each(|r| r.reverse()),
            None => {}
        }
        rows
    }

    #[test]
    fn rotation_and_mirroring_as_exif_orientations() {
        let rows = vec![vec![0, 1, 2], vec![3, 4, 5]];
        let mut seen = Vec::new();
        for angle in 0..4u8 {
            for mirror in [None, Some(0u8), Some(1u8)] {
                let (irot, imir) = ([angle], mirror.map(|m| [m]));
                let mut properties = vec![(*b"irot", &irot[..])];
                if let Some(imir) = &imir {
                    properties.push((*b"imir", &imir[..]));
                }
                let primary = Primary {
                    kind: None,
                    properties,
                };
                let frame = Frame::still(3, 2, Samples::new(1, false, rows.concat()));
                let got = orient(frame, primary.orientation()).unwrap();
                let want = turned(rows.clone(), angle, mirror);
                assert_eq!(
                    (got.width as usize, got.samples.data),
                    (want[0].len(), want.concat()),
                    "irot {angle}, imir {mirror:?}"
                );
                seen.push(primary.orientation());
            }
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, (1..=8).collect::<Vec<u16>>());
    }

    #[test]
    fn crops_from_clean_apertures() {
        // 722 x 1024, as the conformance suite's kimono pictures.
        let ispe = [0, 0, 0, 0, 0, 0, 2, 210, 0, 0, 4, 0];
        let crop = |clap: Option<[i32; 8]>| {
            let clap: Option<Vec<u8>> =
                clap.map(|v| v.iter().flat_map(|x| x.to_be_bytes()).collect());
            let mut properties = vec![(*b"ispe", &ispe[..])];
            if let Some(clap) = &clap {
                properties.push((*b"clap", &clap[..]));
            }
            Primary {
                kind: None,
                properties,
            }
            .crop()
        };
        assert_eq!(crop(None), Some((0, 0, 722, 1024)));
        // Centred, then moved by the signed offsets: (722 - 384) / 2 + 103, (1024 - 330) / 2 - 308.
        let inside = Some((272, 39, 384, 330));
        assert_eq!(crop(Some([384, 1, 330, 1, 103, 1, -308, 1])), inside);
        assert_eq!(crop(Some([768, 2, 330, 1, 206, 2, -616, 2])), inside);
        assert_eq!(
            crop(Some([722, 1, 1024, 1, 0, 1, 0, 1])),
            Some((0, 0, 722, 1024))
        );
        // The suite's kimono.crop.avif: an odd width centred on a half pixel, moved by half
        // a pixel.
        let odd = Some((272, 39, 385, 330));
        assert_eq!(crop(Some([385, 1, 330, 1, 207, 2, -616, 2])), odd);
        // A left edge on a half pixel.
        assert_eq!(crop(Some([385, 1, 330, 1, 103, 1, -308, 1])), None);
        // Past the right edge; a zero denominator; a crop of nothing.
        assert_eq!(crop(Some([384, 1, 330, 1, 200, 1, 0, 1])), None);
        assert_eq!(crop(Some([384, 0, 330, 1, 0, 1, 0, 1])), None);
        assert_eq!(crop(Some([0, 1, 330, 1, 0, 1, 0, 1])), None);
        // The largest values the fields hold (-1 is 2^32 - 1 unsigned) do not overflow.
        assert_eq!(crop(Some([-1, 1, 330, 1, i32::MIN, -1, 0, 1])), None);
        assert_eq!(
            crop(Some([-1, -1, -1, -1, i32::MAX, -1, i32::MIN, -1])),
            None
        );
    }
}
