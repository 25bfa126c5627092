//! Pixels as displayed, the common currency of the lossy encoders: 8-bit RGBA with the
//! orientation applied.

use crate::error::Result;
use crate::guard::{Frame, Samples};
use crate::work::zeroed;

/// An 8-bit RGBA image, row by row, orientation applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rgba8 {
    pub width: u32,
    pub height: u32,
    /// `width * height * 4` bytes.
    pub data: Vec<u8>,
}

impl Rgba8 {
    /// Converts a decoded frame (gray, gray+alpha, RGB or RGBA; 8 or 16 bits) to 8-bit RGBA,
    /// rounding 16-bit samples to the nearest 8-bit value.
    pub fn from_frame(frame: &Frame) -> Result<Self> {
        let pixels = frame.width as usize * frame.height as usize;
        let mut data = zeroed(pixels * 4)?;
        let s = &frame.samples;
        let c = usize::from(s.channels);
        let sample = |i: usize| -> u8 {
            if s.sixteen {
                let v = u16::from_be_bytes([s.data[i * 2], s.data[i * 2 + 1]]);
                ((u32::from(v) * 255 + 32895) >> 16) as u8
            } else {
                s.data[i]
            }
        };
        for (p, out) in data.chunks_exact_mut(4).enumerate() {
            let at = p * c;
            let rgba = match c {
                1 => {
                    let g = sample(at);
                    [g, g, g, 255]
                }
                2 => {
                    let g = sample(at);
                    [g, g, g, sample(at + 1)]
                }
                3 => [sample(at), sample(at + 1), sample(at + 2), 255],
                _ => [sample(at), sample(at + 1), sample(at + 2), sample(at + 3)],
            };
            out.copy_from_slice(&rgba);
        }
        Ok(Self {
            width: frame.width,
            height: frame.height,
            data,
        })
    }

    /// True when every pixel is fully opaque.
    pub fn opaque(&self) -> bool {
        self.data.chunks_exact(4).all(|p| p[3] == 255)
    }

    /// The image as a frame.
    #[cfg(test)]
    pub fn to_frame(&self) -> Frame {
        Frame::still(
            self.width,
            self.height,
            Samples::new(4, false, self.data.clone()),
        )
    }
}

/// `frame` turned upright for an EXIF orientation (1 to 8; others leave it as it is).
pub(crate) fn orient(frame: Frame, orientation: u16) -> Result<Frame> {
    if !(2..=8).contains(&orientation) {
        return Ok(frame);
    }
    let (w, h) = (frame.width as usize, frame.height as usize);
    let size = usize::from(frame.samples.channels) * if frame.samples.sixteen { 2 } else { 1 };
    // Orientations 5 to 8 swap the sides.
    let (ow, oh) = if orientation >= 5 { (h, w) } else { (w, h) };
    let mut data = zeroed(w * h * size)?;
    for y in 0..h {
        for x in 0..w {
            let (ox, oy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (h - 1 - y, x),
                7 => (h - 1 - y, w - 1 - x),
                _ => (y, w - 1 - x),
            };
            let from = (y * w + x) * size;
            let to = (oy * ow + ox) * size;
            data[to..to + size].copy_from_slice(&frame.samples.data[from..from + size]);
        }
    }
    Ok(Frame::still(
        ow as u32,
        oh as u32,
        Samples::new(frame.samples.channels, frame.samples.sixteen, data),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 gray frame with values 0..6, row by row.
    fn gray() -> Frame {
        Frame::still(3, 2, Samples::new(1, false, (0..6).collect()))
    }

    #[test]
    fn orientations_turn_pixels_upright() {
        // 0 1 2
        // 3 4 5
        let cases: [(u16, (u32, u32), [u8; 6]); 4] = [
            (2, (3, 2), [2, 1, 0, 5, 4, 3]),
            (3, (3, 2), [5, 4, 3, 2, 1, 0]),
            // Rotate 90 clockwise to view: the left column, bottom up, becomes the top row.
            (6, (2, 3), [3, 0, 4, 1, 5, 2]),
            (8, (2, 3), [2, 5, 1, 4, 0, 3]),
        ];
        for (orientation, size, want) in cases {
            let turned = orient(gray(), orientation).unwrap();
            assert_eq!((turned.width, turned.height), size, "{orientation}");
            assert_eq!(turned.samples.data, want, "{orientation}");
        }
        assert_eq!(orient(gray(), 1).unwrap(), gray());
    }

    #[test]
    fn sixteen_bit_rounds_to_nearest() {
        let frame = Frame::still(1, 1, Samples::new(2, true, vec![0x80, 0x7f, 0xff, 0xff]));
        let rgba = Rgba8::from_frame(&frame).unwrap();
        assert_eq!(rgba.data, [128, 128, 128, 255]);
        assert!(rgba.opaque());
    }
}
