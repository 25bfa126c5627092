//! A sample of a large image to search on: square tiles spread evenly over it, laid side by
//! side and scored together, but each encoded on its own, so encoders do not predict or
//! filter across seams the whole image does not have. Where the whole image scored 77 to
//! 83, mozjpeg scored 0.9 to 2.6 points higher on the sample and libwebp 0.2 to 2.6, on six
//! corpus images of 4 to 16 MP (`benches/scripts/sample_offset.js`); the search finishes
//! on the whole image.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::pixels::Rgba8;
use crate::work::zeroed;

use super::score::Reference;

/// The tiles a sample takes: `side` pixels square, `count` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tiles {
    pub side: u32,
    pub count: u32,
}

impl Tiles {
    /// Pixels in a sample of `cols` x `rows` tiles.
    pub fn pixels(self, (cols, rows): (u32, u32)) -> u64 {
        u64::from(cols * rows) * u64::from(self.side).pow(2)
    }
}

/// The sample: about 16 tiles of 256x256 pixels, about a megapixel. 256 is a multiple of
/// AV1's 64x64 superblocks and of WebP's and JPEG's 16x16 blocks: no tile has partial ones.
pub(crate) const TILES: Tiles = Tiles {
    side: 256,
    count: 16,
};

/// The sample's pixels as displayed: what is encoded, its sRGB copy when AVIF gets one, and
/// the reference its candidates are scored against.
pub(crate) struct Sample {
    /// The tiles side by side, `grid` of them.
    pub image: Rgba8,
    pub grid: (u32, u32),
    pub srgb: Option<Rgba8>,
    pub reference: Reference,
}

impl Sample {
    /// A tile's side in pixels.
    pub fn side(&self) -> u32 {
        self.image.width / self.grid.0
    }

    pub fn megapixels(&self) -> f64 {
        f64::from(self.image.width * self.image.height) / 1e6
    }
}

/// Columns and rows of tiles for a `width` x `height` image, as near square in the image's
/// proportions as the count allows; `None` when the sample would not be under a third of the
/// image, or a side is shorter than a tile.
pub(crate) fn grid(width: u32, height: u32, tiles: Tiles) -> Option<(u32, u32)> {
    let (across, down) = (width / tiles.side, height / tiles.side);
    if across == 0 || down == 0 {
        return None;
    }
    let wide = f64::from(tiles.count) * f64::from(width) / f64::from(height);
    let cols = (wide.sqrt().round() as u32)
        .clamp(1, tiles.count)
        .min(across);
    let rows = ((f64::from(tiles.count) / f64::from(cols)).round() as u32).clamp(1, down);
    (tiles.pixels((cols, rows)) * 3 <= u64::from(width) * u64::from(height)).then_some((cols, rows))
}

/// The tiles of `frame` at an even spacing, `cols` x `rows` of them side by side, in the
/// frame's own sample layout.
pub(crate) fn mosaic(frame: &Frame, (cols, rows): (u32, u32), side: u32) -> Result<Frame> {
    let s = &frame.samples;
    let pixel = usize::from(s.channels) * if s.sixteen { 2 } else { 1 };
    let (side_px, width) = (side as usize, frame.width as usize);
    let out_width = cols as usize * side_px;
    let mut data = zeroed(out_width * rows as usize * side_px * pixel)?;
    // Tile `i` of `n` starts at an even share of the room left after one tile.
    let at = |i: u32, n: u32, extent: u32| match n {
        1 => (extent - side) / 2,
        _ => ((u64::from(i) * u64::from(extent - side)) / u64::from(n - 1)) as u32,
    } as usize;
    for row in 0..rows {
        let y0 = at(row, rows, frame.height);
        for col in 0..cols {
            let x0 = at(col, cols, frame.width);
            for y in 0..side_px {
                let from = ((y0 + y) * width + x0) * pixel;
                let to =
                    ((row as usize * side_px + y) * out_width + col as usize * side_px) * pixel;
                data[to..to + side_px * pixel]
                    .copy_from_slice(&s.data[from..from + side_px * pixel]);
            }
        }
    }
    Ok(Frame::still(
        cols * side,
        rows * side,
        Samples::new(s.channels, s.sixteen, data),
    ))
}

/// Each tile of `image`, a sample of `grid` tiles of `side` pixels, through `code`, which
/// encodes and decodes one: the encodings end to end, and the decoded tiles laid out as the
/// sample in 16-bit RGBA (8-bit samples scaled by 257, so an 8-bit decode scores as itself).
pub(crate) fn tiled(
    image: &Rgba8,
    (cols, rows): (u32, u32),
    side: u32,
    format: Format,
    mut code: impl FnMut(&Rgba8) -> Result<(Vec<u8>, Frame)>,
) -> Result<(Vec<u8>, Frame)> {
    let s = side as usize;
    let width = cols as usize * s;
    let mut bytes = Vec::new();
    let mut out = zeroed(width * rows as usize * s * 8)?;
    for row in 0..rows as usize {
        for col in 0..cols as usize {
            let mut data = zeroed(s * s * 4)?;
            for (y, line) in data.chunks_exact_mut(s * 4).enumerate() {
                let from = ((row * s + y) * width + col * s) * 4;
                line.copy_from_slice(&image.data[from..from + s * 4]);
            }
            let tile = Rgba8 {
                width: side,
                height: side,
                data,
            };
            let (encoded, decoded) = code(&tile)?;
            if (decoded.width, decoded.height) != (side, side) {
                return Err(Error::decode(format, "a tile decoded to another size"));
            }
            bytes.extend_from_slice(&encoded);
            for y in 0..s {
                let to = ((row * s + y) * width + col * s) * 8;
                let line = &mut out[to..to + s * 8];
                for (x, pixel) in line.chunks_exact_mut(8).enumerate() {
                    let rgba = decoded.samples.rgba16(y * s + x);
                    for (k, value) in rgba.iter().enumerate() {
                        pixel[k * 2..k * 2 + 2].copy_from_slice(&value.to_be_bytes());
                    }
                }
            }
        }
    }
    Ok((
        bytes,
        Frame::still(cols * side, rows * side, Samples::new(4, true, out)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_follow_the_proportions_and_skip_small_images() {
        assert_eq!(grid(4000, 3000, TILES), Some((5, 3)));
        assert_eq!(grid(3000, 4000, TILES), Some((3, 5)));
        assert_eq!(grid(3840, 2160, TILES), Some((5, 3)));
        assert_eq!(grid(2048, 1536, TILES), Some((5, 3)));
        // A panorama: one row, as many columns as the count.
        assert_eq!(grid(20000, 300, TILES), Some((16, 1)));
        // Under three samples' worth of pixels, or a side under a tile.
        assert_eq!(grid(1600, 1200, TILES), None);
        assert_eq!(grid(100_000, 200, TILES), None);
    }

    #[test]
    fn tiles_are_coded_one_by_one_and_laid_out_again() {
        // Two 4x4 tiles side by side: red on the left, green on the right.
        let mut data = Vec::new();
        for _ in 0..4 {
            for x in 0..8 {
                data.extend_from_slice(if x < 4 {
                    &[200, 0, 0, 255]
                } else {
                    &[0, 100, 0, 255]
                });
            }
        }
        let image = Rgba8 {
            width: 8,
            height: 4,
            data,
        };
        let mut seen = Vec::new();
        // A stand-in codec: one byte, the tile's first red value; decodes to 8-bit RGB.
        let (bytes, frame) = tiled(&image, (2, 1), 4, Format::Png, |tile| {
            seen.push((tile.width, tile.height, tile.data.clone()));
            let rgb: Vec<u8> = tile
                .data
                .chunks_exact(4)
                .flat_map(|p| [p[0], p[1], p[2]])
                .collect();
            Ok((
                vec![tile.data[0]],
                Frame::still(4, 4, Samples::new(3, false, rgb)),
            ))
        })
        .unwrap();
        assert_eq!(bytes, [200, 0]);
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|(w, h, d)| (*w, *h, d.len()) == (4, 4, 64)));
        assert_eq!((frame.width, frame.height), (8, 4));
        assert_eq!((frame.samples.channels, frame.samples.sixteen), (4, true));
        let pixel = |x: usize, y: usize| frame.samples.rgba16(y * 8 + x);
        assert_eq!(pixel(3, 3), [200 * 257, 0, 0, 65535]);
        assert_eq!(pixel(4, 0), [0, 100 * 257, 0, 65535]);
        // A tile that decodes to another size is an error, not a panic.
        let wrong = tiled(&image, (2, 1), 4, Format::Png, |_| {
            Ok((
                Vec::new(),
                Frame::still(2, 2, Samples::new(3, false, vec![0; 12])),
            ))
        });
        assert!(wrong.is_err());
    }

    #[test]
    fn tiles_are_copied_from_evenly_spaced_places() {
        // 16-bit gray+alpha whose samples encode their coordinates.
        let (width, height) = (40u32, 30u32);
        let mut data = Vec::new();
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&(x as u16).to_be_bytes());
                data.extend_from_slice(&(y as u16).to_be_bytes());
            }
        }
        let frame = Frame::still(width, height, Samples::new(2, true, data));
        let out = mosaic(&frame, (3, 2), 10).unwrap();
        assert_eq!((out.width, out.height), (30, 20));
        let at = |x: usize, y: usize| {
            let i = (y * 30 + x) * 4;
            let d = &out.samples.data;
            (
                u16::from_be_bytes([d[i], d[i + 1]]),
                u16::from_be_bytes([d[i + 2], d[i + 3]]),
            )
        };
        // Columns start at 0, 15 and 30; rows at 0 and 20.
        assert_eq!(at(0, 0), (0, 0));
        assert_eq!(at(10, 0), (15, 0));
        assert_eq!(at(29, 9), (39, 9));
        assert_eq!(at(20, 10), (30, 20));
        assert_eq!(at(29, 19), (39, 29));
    }
}
