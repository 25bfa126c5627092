//! Pixels in an ICC profile's colour space converted to sRGB, so that they are scored as a
//! colour-managed display shows them.

use qcms::{DataType, Intent, Profile, Transform};

use crate::error::{Error, Result};
use crate::guard::{Frame, Samples};
use crate::pixels::Rgba8;

/// Probe colours: a profile that takes each to sRGB within a level is sRGB's.
const PROBES: [[u8; 3]; 16] = [
    [0, 0, 0],
    [255, 255, 255],
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 255, 0],
    [0, 255, 255],
    [255, 0, 255],
    [16, 16, 16],
    [64, 64, 64],
    [128, 128, 128],
    [192, 192, 192],
    [200, 100, 50],
    [50, 100, 200],
    [30, 180, 220],
    [120, 40, 160],
];

fn is_identity(transform: &Transform) -> bool {
    let before: Vec<u8> = PROBES
        .iter()
        .flat_map(|&[r, g, b]| [r, g, b, 255])
        .collect();
    let mut after = before.clone();
    transform.apply(&mut after);
    after.iter().zip(&before).all(|(a, b)| a.abs_diff(*b) <= 1)
}

/// qcms's conversion of 8-bit RGBA from `icc` to sRGB; `None` when it cannot make one.
fn to_srgb(icc: &[u8]) -> Option<Transform> {
    let input = Profile::new_from_slice(icc, false)?;
    let mut srgb = Profile::new_sRGB();
    srgb.precache_output_transform();
    Transform::new(&input, &srgb, DataType::RGBA8, Intent::Perceptual)
}

/// How pixels that name their colour by ITU-T H.273 code points (AVIF's nclx box, PNG's
/// cICP chunk) rather than by a profile are shown here: as sRGB (`Ok(None)`) for BT.709 or
/// unspecified primaries, through Display P3's profile for primaries 12, both with a
/// transfer viewers show as sRGB's (BT.709, unspecified, BT.601, sRGB); else not at all,
/// with the reason (other primaries such as BT.2020; HDR and other transfers).
pub(crate) fn coded(primaries: u16, transfer: u16) -> Result<Option<Vec<u8>>, String> {
    let not = || format!("its colour (primaries {primaries}, transfer {transfer}) is not sRGB's");
    if !matches!(transfer, 1 | 2 | 6 | 13) {
        return Err(not());
    }
    match primaries {
        1 | 2 => Ok(None),
        12 => display_p3().map(Some).ok_or_else(not),
        _ => Err(not()),
    }
}

/// The ICC profile of Display P3 (moxcms): P3-D65 primaries with sRGB's transfer.
pub(crate) fn display_p3() -> Option<Vec<u8>> {
    moxcms::ColorProfile::new_display_p3().encode().ok()
}

/// The ICC profile (moxcms) of a PNG's `gAMA` and `cHRM` as viewers apply them when no other
/// chunk names the colour: `gamma` the decoding exponent (1 / gAMA; `None`: sRGB's curve),
/// `chromaticities` the white point and red, green, blue (x, y) (`None`: sRGB's). `None`
/// when they make no profile qcms can convert from (a white or primary with y = 0, primaries
/// on one line).
pub(crate) fn gamma_and_chromaticities(
    gamma: Option<f64>,
    chromaticities: Option<[f64; 8]>,
) -> Option<Vec<u8>> {
    use moxcms::{Chromaticity, ColorPrimaries, ToneReprCurve, XyY};
    let mut profile = moxcms::ColorProfile::new_srgb();
    if let Some(c) = chromaticities {
        // Each (x, y) as XYZ at Y = 1; the primaries' must span the space.
        if c.iter().skip(1).step_by(2).any(|&y| y <= 0.0) {
            return None;
        }
        let xyz = |i: usize| [c[i] / c[i + 1], 1.0, (1.0 - c[i] - c[i + 1]) / c[i + 1]];
        let [r, g, b] = [xyz(2), xyz(4), xyz(6)];
        let det = r[0] * (g[1] * b[2] - g[2] * b[1]) - r[1] * (g[0] * b[2] - g[2] * b[0])
            + r[2] * (g[0] * b[1] - g[1] * b[0]);
        if det.abs() < 1e-6 {
            return None;
        }
        let white = XyY {
            x: c[0],
            y: c[1],
            yb: 1.0,
        };
        let xy = |i: usize| Chromaticity::new(c[i] as f32, c[i + 1] as f32);
        let primaries = ColorPrimaries {
            red: xy(2),
            green: xy(4),
            blue: xy(6),
        };
        profile.update_rgb_colorimetry(white, primaries);
        profile.media_white_point = Some(white.to_xyzd());
    }
    if let Some(gamma) = gamma {
        let curve = ToneReprCurve::Parametric(vec![gamma as f32]);
        profile.red_trc = Some(curve.clone());
        profile.green_trc = Some(curve.clone());
        profile.blue_trc = Some(curve);
    }
    profile.cicp = None;
    profile.description = Some(moxcms::ProfileText::Localizable(vec![
        moxcms::LocalizableString::new("en".into(), "US".into(), "PNG gAMA and cHRM".into()),
    ]));
    let colorants = [
        profile.red_colorant,
        profile.green_colorant,
        profile.blue_colorant,
    ];
    if !colorants
        .iter()
        .all(|c| c.x.is_finite() && c.y.is_finite() && c.z.is_finite())
    {
        return None;
    }
    profile.encode().ok().filter(|icc| to_srgb(icc).is_some())
}

/// A conversion from one ICC profile to sRGB; `None` inside when nothing needs converting.
pub(crate) struct ToSrgb(Option<Transform>);

impl std::fmt::Debug for ToSrgb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ToSrgb").field(&self.0.is_some()).finish()
    }
}

impl ToSrgb {
    /// The conversion for `icc`.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for a profile that cannot convert RGB pixels (a grey or CMYK
    /// profile, or one qcms cannot read).
    pub fn new(icc: Option<&[u8]>) -> Result<Self> {
        let Some(icc) = icc else {
            return Ok(Self(None));
        };
        let transform = to_srgb(icc).ok_or_else(|| {
            Error::InvalidOption("the ICC profile cannot convert RGB to sRGB".into())
        })?;
        Ok(Self((!is_identity(&transform)).then_some(transform)))
    }

    /// False for sRGB's own profile, and one that shows pixels as it does, which untagged
    /// pixels mean too: qcms takes the probe colours through it to sRGB within a level. A
    /// description naming sRGB is not enough: GIMP's linear-light profile is "Linear sRGB".
    pub fn converts(&self) -> bool {
        self.0.is_some()
    }

    /// `frame` in sRGB: unchanged without a conversion, else as 8-bit RGBA.
    pub fn apply(&self, frame: Frame) -> Result<Frame> {
        let Some(transform) = &self.0 else {
            return Ok(frame);
        };
        let mut image = Rgba8::from_frame(&frame)?;
        transform.apply(&mut image.data);
        Ok(Frame::still(
            image.width,
            image.height,
            Samples::new(4, false, image.data),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_srgb(icc: &[u8]) -> bool {
        ToSrgb::new(Some(icc)).is_ok_and(|t| !t.converts())
    }

    /// qcms reads the made profile; a mid P3 red is a more saturated red in sRGB, as the
    /// P3-D65 to sRGB matrix on linear values gives it (214.9, 92.6, 96.6 for 200, 100,
    /// 100), and P3 white stays white.
    #[test]
    fn display_p3_converts_to_srgb() {
        let p3 = display_p3().unwrap();
        assert!(!is_srgb(&p3));
        let pixels = Frame::still(
            2,
            1,
            Samples::new(3, false, vec![200, 100, 100, 255, 255, 255]),
        );
        let shown = ToSrgb::new(Some(&p3)).unwrap().apply(pixels).unwrap();
        let data = &shown.samples.data;
        let want = [214.9, 92.6, 96.6];
        let near = data[..3]
            .iter()
            .zip(want)
            .all(|(&v, w)| (f64::from(v) - w).abs() < 1.5);
        assert!(near, "{data:?}");
        assert!(data[4..7].iter().all(|&v| v >= 254), "{data:?}");
    }

    /// sRGB profiles as writers make them are sRGB; one that only names sRGB is not.
    #[test]
    fn srgb_is_told_by_its_colours_not_its_name() {
        let png_icc = |path: &str| {
            let path = format!("{}/../corpus/{path}", env!("CARGO_MANIFEST_DIR"));
            crate::codecs::png::icc(&std::fs::read(path).unwrap()).unwrap()
        };
        // The IEC 61966-2.1 profile (HP's, 3,144 bytes), GIMP's built-in one, and moxcms's.
        for (name, profile) in [
            ("iec", png_icc("holdout/photo_chelsea_cat.png")),
            ("gimp", png_icc("dev/screenshot_gnome_topbar_icc.png")),
            ("moxcms", moxcms::ColorProfile::new_srgb().encode().unwrap()),
        ] {
            assert!(is_srgb(&profile), "{name}");
            assert!(ToSrgb::new(Some(&profile)).unwrap().0.is_none(), "{name}");
        }
        let mut linear = moxcms::ColorProfile::new_srgb();
        let curve = Some(moxcms::ToneReprCurve::Parametric(vec![1.0]));
        (linear.red_trc, linear.green_trc, linear.blue_trc) = (curve.clone(), curve.clone(), curve);
        linear.cicp = None;
        let linear = linear.encode().unwrap();
        // Its description still reads "sRGB IEC61966-2.1" (UTF-16).
        assert!(linear.windows(8).any(|w| w == b"\0s\0R\0G\0B"));
        assert!(!is_srgb(&linear));
        assert!(!is_srgb(&display_p3().unwrap()));
        assert!(!is_srgb(b"not a profile"));
    }

    #[test]
    fn adobe_rgb_green_is_converted_and_srgb_is_left_alone() {
        let adobe = crate::codecs::jpeg::icc(
            &std::fs::read(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../corpus/dev/photo_rocket_icc_orient6.jpg"
            ))
            .unwrap(),
        )
        .unwrap();
        assert!(!is_srgb(&adobe));
        let green = Frame::still(1, 1, Samples::new(3, false, vec![0, 255, 0]));
        let shown = ToSrgb::new(Some(&adobe))
            .unwrap()
            .apply(green.clone())
            .unwrap();
        // Adobe RGB's green lies outside sRGB: it clips to full green, and its red rises
        // no further than zero while a mid value would move.
        let mid = Frame::still(1, 1, Samples::new(3, false, vec![128, 64, 32]));
        let moved = ToSrgb::new(Some(&adobe)).unwrap().apply(mid).unwrap();
        assert_ne!(&moved.samples.data[..3], &[128, 64, 32]);
        assert_eq!(shown.samples.data[1], 255);
        assert_eq!(
            ToSrgb::new(None).unwrap().apply(green.clone()).unwrap(),
            green
        );
        assert!(ToSrgb::new(Some(b"not a profile")).is_err());
    }

    /// Any gAMA and cHRM values a file can hold make a profile that converts, or none; none
    /// panics (3,000 draws from a fixed seed: values of any size, gamma too).
    #[test]
    fn any_gamma_and_chromaticities_make_a_profile_or_none() {
        let mut seed = 12_345u64;
        let mut next = |max: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % max
        };
        let mut made = 0;
        for i in 0..3000 {
            let max = [2, 100_001, 200_000, 1 << 32][i % 4];
            let c: [f64; 8] = std::array::from_fn(|_| next(max) as f64 / 1e5);
            let gamma = (i % 3 == 0).then(|| 1e5 / (next(1 << 32) + 1) as f64);
            if let Some(icc) = gamma_and_chromaticities(gamma, Some(c)) {
                made += 1;
                let frame = Frame::still(
                    2,
                    1,
                    Samples::new(4, false, vec![0, 128, 255, 255, 7, 200, 3, 100]),
                );
                ToSrgb::new(Some(&icc)).unwrap().apply(frame).unwrap();
            }
        }
        // About three in four draws make one (2,228 of 3,000).
        assert!((1000..3000).contains(&made), "{made}");
    }
}
