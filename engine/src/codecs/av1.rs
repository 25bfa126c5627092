//! AV1 decoding with rav1d through its dav1d C API: one picture out of an AVIF item's data,
//! single-threaded, with its planes lent out as slices.
#![allow(unsafe_code)]

use std::ffi::c_uint;
use std::ptr::NonNull;

use rav1d::Dav1dResult;
use rav1d::include::dav1d::data::Dav1dData;
use rav1d::include::dav1d::dav1d::{Dav1dContext, Dav1dLogger, Dav1dSettings};
use rav1d::include::dav1d::headers::{
    DAV1D_PIXEL_LAYOUT_I400, DAV1D_PIXEL_LAYOUT_I420, DAV1D_PIXEL_LAYOUT_I422,
    DAV1D_PIXEL_LAYOUT_I444, Dav1dSequenceHeader,
};
use rav1d::include::dav1d::picture::Dav1dPicture;
use rav1d::src::lib::{
    dav1d_close, dav1d_data_create, dav1d_data_unref, dav1d_default_settings, dav1d_get_picture,
    dav1d_open, dav1d_parse_sequence_header, dav1d_picture_unref, dav1d_send_data,
};

use crate::error::{Error, Result};
use crate::format::Format;

fn failed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Avif, reason)
}

/// rav1d's results are negative errno values.
fn check(result: Dav1dResult, what: &str) -> Result<()> {
    match result.0 {
        0.. => Ok(()),
        code => Err(failed(format!(
            "AV1 {what} failed: {}",
            std::io::Error::from_raw_os_error(-code)
        ))),
    }
}

/// Samples of one plane, 8-bit or (10 and 12-bit) 16-bit.
#[derive(Debug, Clone, Copy)]
pub(super) enum Texels<'a> {
    Eight(&'a [u8]),
    Sixteen(&'a [u16]),
}

/// One plane: `height` rows of `width` samples, `stride` samples apart.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plane<'a> {
    texels: Texels<'a>,
    stride: usize,
    pub width: usize,
    pub height: usize,
}

impl<'a> Plane<'a> {
    /// None when the samples do not hold `height` rows of `width` samples.
    pub fn new(texels: Texels<'a>, stride: usize, width: usize, height: usize) -> Option<Self> {
        let len = match texels {
            Texels::Eight(s) => s.len(),
            Texels::Sixteen(s) => s.len(),
        };
        let needed = stride
            .checked_mul(height.checked_sub(1)?)?
            .checked_add(width)?;
        (width > 0 && stride >= width && len >= needed).then_some(Self {
            texels,
            stride,
            width,
            height,
        })
    }

    /// The sample at column `x`, row `y`; both must be inside the plane.
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> u16 {
        let i = y * self.stride + x;
        match self.texels {
            Texels::Eight(s) => s[i].into(),
            Texels::Sixteen(s) => s[i],
        }
    }
}

/// The planes of a decoded picture and what the AV1 sequence header says about them.
#[derive(Debug)]
pub(super) struct Planes<'a> {
    /// 8, 10 or 12.
    pub depth: u8,
    /// Chroma halved horizontally, vertically.
    pub subsampling: (bool, bool),
    pub luma: Plane<'a>,
    /// Cb and Cr; none for a monochrome picture.
    pub chroma: Option<[Plane<'a>; 2]>,
    /// Matrix coefficients (ITU-T H.273) of the sequence header.
    pub matrix: u16,
    pub full_range: bool,
}

/// A decoded picture, released on drop.
pub(super) struct Picture(Dav1dPicture);

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.0.p;
        write!(f, "Picture({}x{}, {} bits)", p.w, p.h, p.bpc)
    }
}

impl Drop for Picture {
    fn drop(&mut self) {
        // SAFETY: the picture is a valid (possibly empty) Dav1dPicture owned by self.
        unsafe { dav1d_picture_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// A decoder context, closed on drop.
struct Context(Option<Dav1dContext>);

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is None or came from dav1d_open; dav1d_close sets it to None.
        unsafe { dav1d_close(Some(NonNull::from(&mut self.0))) };
    }
}

/// Input data, released on drop (a no-op once rav1d has taken it).
struct Data(Dav1dData);

impl Drop for Data {
    fn drop(&mut self) {
        // SAFETY: the data is empty or came from dav1d_data_create.
        unsafe { dav1d_data_unref(Some(NonNull::from(&mut self.0))) };
    }
}

/// The colour of the first sequence header in `obus`, read without decoding: primaries,
/// transfer characteristics, matrix coefficients (ITU-T H.273; 2, unspecified, when the
/// header names none) and the full-range flag. `None` when there is no valid header.
/// `obus` is an item avif-parse has read, as for [`decode`].
pub(super) fn sequence_colour(obus: &[u8]) -> Option<(u16, u16, u16, bool)> {
    // rav1d's input checks panic on empty data in debug builds, and the panic cannot unwind
    // out of its C API: the process aborts.
    if obus.is_empty() {
        return None;
    }
    let mut header = std::mem::MaybeUninit::<Dav1dSequenceHeader>::uninit();
    // SAFETY: both pointers are to live values, the data `obus.len()` bytes long; rav1d
    // writes the whole header when it succeeds and nothing otherwise.
    let parsed = unsafe {
        dav1d_parse_sequence_header(
            Some(NonNull::from(&mut header).cast()),
            NonNull::new(obus.as_ptr().cast_mut()),
            obus.len(),
        )
    };
    check(parsed, "sequence header").ok()?;
    // SAFETY: written by rav1d above.
    let header = unsafe { header.assume_init() };
    let code = |v: c_uint| u16::try_from(v).unwrap_or(u16::MAX);
    Some((
        code(header.pri),
        code(header.trc),
        code(header.mtrx),
        header.color_range != 0,
    ))
}

/// Decodes the first picture of `obus` (an AV1 item's data). Frames over `max_pixels` fail.
pub(super) fn decode(obus: &[u8], max_pixels: u64) -> Result<Picture> {
    if obus.is_empty() {
        return Err(failed("empty AV1 item"));
    }
    let mut settings = std::mem::MaybeUninit::<Dav1dSettings>::uninit();
    // SAFETY: dav1d_default_settings writes every field of the settings it is given.
    let mut settings = unsafe {
        dav1d_default_settings(NonNull::from(&mut settings).cast());
        settings.assume_init()
    };
    settings.n_threads = 1;
    settings.max_frame_delay = 1;
    // The highest spatial layer of operating point 0, as AVIF readers show.
    settings.all_layers = 0;
    // 0 would mean no limit.
    settings.frame_size_limit = c_uint::try_from(max_pixels.max(1)).unwrap_or(c_uint::MAX);
    // SAFETY: no callback, so there is nothing for rav1d to call.
    settings.logger = unsafe { Dav1dLogger::new(None, None) };

    let mut context = Context(None);
    // SAFETY: both pointers are to live values; the context is written on success.
    let opened = unsafe {
        dav1d_open(
            Some(NonNull::from(&mut context.0)),
            Some(NonNull::from(&mut settings)),
        )
    };
    check(opened, "decoder setup")?;

    let mut data = Data(Dav1dData::default());
    // SAFETY: `data` is writable; rav1d allocates `obus.len()` bytes and returns them (or null).
    let buffer = unsafe { dav1d_data_create(Some(NonNull::from(&mut data.0)), obus.len()) };
    if buffer.is_null() {
        return Err(failed("no memory for the AV1 data"));
    }
    // SAFETY: `buffer` holds `obus.len()` bytes that nothing else refers to yet.
    unsafe { std::ptr::copy_nonoverlapping(obus.as_ptr(), buffer, obus.len()) };

    // SAFETY: the context is open and `data` came from dav1d_data_create. On success rav1d
    // takes all of the data (what a picture leaves over stays queued in the context).
    let sent = unsafe { dav1d_send_data(context.0, Some(NonNull::from(&mut data.0))) };
    check(sent, "decode")?;
    let mut picture = Picture(Dav1dPicture::default());
    // SAFETY: the context is open and the picture is writable; on failure it stays empty.
    let got = unsafe { dav1d_get_picture(context.0, Some(NonNull::from(&mut picture.0))) };
    check(got, "picture output")?;
    Ok(picture)
}

impl Picture {
    pub fn size(&self) -> (u32, u32) {
        let p = &self.0.p;
        (
            u32::try_from(p.w).unwrap_or(0),
            u32::try_from(p.h).unwrap_or(0),
        )
    }

    /// The picture's planes, borrowed from it.
    pub fn planes(&self) -> Result<Planes<'_>> {
        let p = &self.0.p;
        let depth = match p.bpc {
            8 => 8,
            10 => 10,
            12 => 12,
            n => return Err(failed(format!("{n}-bit AV1 picture"))),
        };
        let subsampling = match p.layout {
            DAV1D_PIXEL_LAYOUT_I400 | DAV1D_PIXEL_LAYOUT_I420 => (true, true),
            DAV1D_PIXEL_LAYOUT_I422 => (true, false),
            DAV1D_PIXEL_LAYOUT_I444 => (false, false),
            n => return Err(failed(format!("unknown AV1 pixel layout {n}"))),
        };
        let (w, h) = self.size();
        let (w, h) = (w as usize, h as usize);
        let luma = self.plane(0, w, h)?;
        let chroma = if p.layout == DAV1D_PIXEL_LAYOUT_I400 {
            None
        } else {
            let cw = (w + usize::from(subsampling.0)) >> usize::from(subsampling.0);
            let ch = (h + usize::from(subsampling.1)) >> usize::from(subsampling.1);
            Some([self.plane(1, cw, ch)?, self.plane(2, cw, ch)?])
        };
        let header = self
            .0
            .seq_hdr
            .ok_or_else(|| failed("AV1 picture without a sequence header"))?;
        // SAFETY: the sequence header is kept alive by the picture's reference to it.
        let header = unsafe { header.as_ref() };
        Ok(Planes {
            depth,
            subsampling,
            luma,
            chroma,
            matrix: u16::try_from(header.mtrx).unwrap_or(u16::MAX),
            full_range: header.color_range != 0,
        })
    }

    /// Plane `i` (0 luma, 1 Cb, 2 Cr) as `height` rows of `width` samples.
    fn plane(&self, i: usize, width: usize, height: usize) -> Result<Plane<'_>> {
        let pic = &self.0;
        let wide = pic.p.bpc > 8;
        let size = if wide { 2 } else { 1 };
        let stride = usize::try_from(pic.stride[i.min(1)]).unwrap_or(0);
        let ptr = pic.data[i].ok_or_else(|| failed("AV1 picture without planes"))?;
        let bytes = stride
            .checked_mul(height.saturating_sub(1))
            .and_then(|n| n.checked_add(width * size))
            .filter(|_| width > 0 && height > 0 && stride >= width * size)
            .ok_or_else(|| failed("AV1 picture with an unusable plane layout"))?;
        let texels = if wide {
            if !ptr.as_ptr().cast::<u16>().is_aligned() || !stride.is_multiple_of(2) {
                return Err(failed("misaligned 16-bit AV1 plane"));
            }
            // SAFETY: rav1d allocated at least `stride * height` bytes for the plane (the last
            // row only needs `width` samples), 16-bit aligned as checked, and they stay
            // untouched while the picture holds its reference.
            Texels::Sixteen(unsafe {
                std::slice::from_raw_parts(ptr.as_ptr().cast::<u16>(), bytes / 2)
            })
        } else {
            // SAFETY: as above, for 8-bit samples.
            Texels::Eight(unsafe { std::slice::from_raw_parts(ptr.as_ptr().cast::<u8>(), bytes) })
        };
        Plane::new(texels, stride / size, width, height)
            .ok_or_else(|| failed("AV1 picture with an unusable plane layout"))
    }
}
