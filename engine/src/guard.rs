//! Guards on every result: decoded frames compared pixel-exact, never bigger than the input.

/// Decoded samples of one frame, in the decoder's own layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Samples {
    /// 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA.
    pub channels: u8,
    /// 16-bit big-endian samples when true, 8-bit otherwise.
    pub sixteen: bool,
    pub data: Vec<u8>,
}

impl Samples {
    pub fn new(channels: u8, sixteen: bool, data: Vec<u8>) -> Self {
        Self {
            channels,
            sixteen,
            data,
        }
    }

    fn len(&self) -> usize {
        self.data.len() / (usize::from(self.channels) * if self.sixteen { 2 } else { 1 })
    }

    /// Pixel `i` as 16-bit RGBA; 8-bit samples scale by 257, so `x` and `x * 257` match.
    pub(crate) fn rgba16(&self, i: usize) -> [u16; 4] {
        let c = usize::from(self.channels);
        let sample = |k: usize| -> u16 {
            if self.sixteen {
                let at = (i * c + k) * 2;
                u16::from_be_bytes([self.data[at], self.data[at + 1]])
            } else {
                u16::from(self.data[i * c + k]) * 257
            }
        };
        match c {
            1 => {
                let g = sample(0);
                [g, g, g, u16::MAX]
            }
            2 => {
                let g = sample(0);
                [g, g, g, sample(1)]
            }
            3 => [sample(0), sample(1), sample(2), u16::MAX],
            _ => [sample(0), sample(1), sample(2), sample(3)],
        }
    }
}

/// One decoded frame with the placement and timing that must survive optimization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub width: u32,
    pub height: u32,
    /// Format-specific placement and timing (offsets, delay, disposal, blending).
    pub control: [u32; 6],
    pub samples: Samples,
}

impl Frame {
    pub fn still(width: u32, height: u32, samples: Samples) -> Self {
        Self {
            width,
            height,
            control: [0; 6],
            samples,
        }
    }
}

/// True when both decode to the same pixels, frame by frame, in every channel.
pub(crate) fn same_frames(a: &[Frame], b: &[Frame]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_frame(x, y))
}

fn same_frame(a: &Frame, b: &Frame) -> bool {
    if (a.width, a.height, a.control) != (b.width, b.height, b.control) {
        return false;
    }
    let (sa, sb) = (&a.samples, &b.samples);
    let pixels = a.width as usize * a.height as usize;
    if sa.len() != pixels || sb.len() != pixels {
        return false;
    }
    if (sa.channels, sa.sixteen) == (sb.channels, sb.sixteen) {
        return sa.data == sb.data;
    }
    (0..pixels).all(|i| sa.rgba16(i) == sb.rgba16(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(channels: u8, sixteen: bool, data: Vec<u8>) -> Frame {
        Frame::still(1, 1, Samples::new(channels, sixteen, data))
    }

    #[test]
    fn layouts_compare_by_value() {
        let gray8 = frame(1, false, vec![0x12]);
        let rgba16 = frame(
            4,
            true,
            vec![0x12, 0x12, 0x12, 0x12, 0x12, 0x12, 0xff, 0xff],
        );
        assert!(same_frames(std::slice::from_ref(&gray8), &[rgba16]));
        let off_by_one = frame(
            4,
            true,
            vec![0x12, 0x12, 0x12, 0x12, 0x12, 0x13, 0xff, 0xff],
        );
        assert!(!same_frames(std::slice::from_ref(&gray8), &[off_by_one]));
        let transparent = frame(2, false, vec![0x12, 0xfe]);
        assert!(!same_frames(&[gray8], &[transparent]));
    }

    #[test]
    fn frame_count_and_control_matter() {
        let a = frame(3, false, vec![1, 2, 3]);
        let mut b = a.clone();
        b.control[2] = 100;
        assert!(!same_frames(std::slice::from_ref(&a), &[b]));
        assert!(!same_frames(
            std::slice::from_ref(&a),
            &[a.clone(), a.clone()]
        ));
    }
}
