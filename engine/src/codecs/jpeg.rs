//! JPEG: lossless transcode with mozjpeg (coefficients kept, progressive scans, optimized
//! Huffman tables), and libjpeg's own decode for the pixel-exact guard, arithmetic coding
//! included. libjpeg reports errors by calling `error_exit`; ours unwinds, and the unwinding
//! stops in this file. 12-bit files are checked from their header and kept as they are.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_ulong};
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use mozjpeg_sys as sys;

use super::Attempt;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::limits::{Header, Limits};
use crate::metadata::{essential_exif, exif_orientation};
use crate::options::{Metadata, Options};
use crate::pixels::Rgba8;
use crate::work::{Deadline, zeroed};

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Jpeg, reason)
}

/// What the frame header (SOF) and the segments before it say.
struct Sof {
    /// Bits per sample: 8, or 12 (16 for lossless) which no decoder here reads.
    precision: u8,
    width: u32,
    height: u32,
    components: u8,
    arithmetic: bool,
    metadata: u64,
}

/// Walks the marker segments up to the frame header. Like libjpeg, skips stray bytes
/// between segments.
fn frame_header(bytes: &[u8]) -> Result<Sof> {
    let mut pos = 2;
    let mut metadata = 0u64;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let junk = rest.iter().take_while(|&&b| b != 0xFF).count();
        let fill = rest[junk..].iter().take_while(|&&b| b == 0xFF).count();
        let marker = *rest
            .get(junk + fill)
            .ok_or_else(|| malformed("truncated header"))?;
        pos += junk + fill + 1;
        // 0x00 after 0xFF is a stuffed byte, junk too; TEM and RSTn stand alone.
        if matches!(marker, 0x00 | 0x01 | 0xD0..=0xD7) {
            continue;
        }
        let len = bytes
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
            .ok_or_else(|| malformed("truncated header"))?;
        let segment = bytes
            .get(pos + 2..pos + len)
            .filter(|_| len >= 2)
            .ok_or_else(|| malformed("a marker segment runs past the end"))?;
        match marker {
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let sof = segment
                    .get(..6)
                    .ok_or_else(|| malformed("short frame header"))?;
                let height = u32::from(u16::from_be_bytes([sof[1], sof[2]]));
                let width = u32::from(u16::from_be_bytes([sof[3], sof[4]]));
                if width == 0 || height == 0 {
                    return Err(malformed(format!("zero-sized frame {width}x{height}")));
                }
                return Ok(Sof {
                    precision: sof[0],
                    width,
                    height,
                    components: sof[5],
                    arithmetic: marker >= 0xC9,
                    metadata,
                });
            }
            0xE0..=0xEF | 0xFE => metadata += segment.len() as u64,
            0xDA | 0xD9 => return Err(malformed("no frame header before the scan")),
            _ => {}
        }
        pos += len;
    }
}

pub(super) fn probe(bytes: &[u8]) -> Result<Header> {
    let sof = frame_header(bytes)?;
    let mut header = Header::still(sof.width, sof.height);
    header.metadata_bytes = sof.metadata;
    if sof.precision == 8 && (1..=4).contains(&sof.components) {
        // One byte a component: gray, RGB, or CMYK kept as four channels.
        header.bytes_per_pixel = sof.components;
    }
    Ok(header)
}

/// Decodes with libjpeg to gray, RGB or CMYK (its default output for each colour space).
/// A file of another precision is only validated from its header: `None`, kept as it is.
pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Option<Vec<Frame>>> {
    if frame_header(bytes)?.precision != 8 {
        return Ok(None);
    }
    let mut codec = Codec::new(0, None)?;
    // SAFETY: the codec's structs are boxed and outlive the call; errors unwind into `run`.
    codec
        .run(|codec| unsafe { read_pixels(codec, bytes, limits) })?
        .map(Some)
}

pub(super) fn optimize(bytes: &[u8], options: &Options, deadline: &Deadline) -> Result<Attempt> {
    let sof = frame_header(bytes)?;
    if sof.precision != 8 {
        return Ok(Attempt::unchanged(format!(
            "jpeg: {}-bit, kept as is (the transcoder reads 8-bit only)",
            sof.precision
        )));
    }
    let mut codec = Codec::new(bytes.len(), Some(deadline))?;
    // SAFETY: as in `decode`; the deadline outlives the codec.
    codec.run(|codec| unsafe { transcode(codec, bytes, options.metadata) })?;
    let mut action =
        String::from("jpeg: mozjpeg lossless transcode, progressive, optimized Huffman");
    if sof.arithmetic {
        action.push_str(" (from arithmetic coding, which browsers cannot show)");
    }
    Ok(Attempt {
        data: Some(std::mem::take(&mut codec.sink.data)),
        actions: vec![action],
    })
}

/// A libjpeg failure carried by the unwinding `error_exit`.
struct Failure(String);

/// The deadline's error, carried by the unwinding progress monitor.
struct Overtime(Error);

fn message(cinfo: &mut sys::jpeg_common_struct) -> String {
    let mut buffer = [0u8; 80];
    // SAFETY: `err` points to the error manager we installed; `format_message` is libjpeg's own.
    unsafe {
        if let Some(format) = (*cinfo.err).format_message {
            format(cinfo, &buffer);
        }
    }
    buffer[79] = 0;
    CStr::from_bytes_until_nul(&buffer)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

extern "C-unwind" fn error_exit(cinfo: &mut sys::jpeg_common_struct) {
    // resume_unwind skips the panic hook: a bad input is an error, not a crash report.
    resume_unwind(Box::new(Failure(message(cinfo))));
}

/// Warnings on corrupt data are fatal: a damaged scan must not come back re-encoded. Stray
/// bytes between header segments are the exception: no scan is involved and the transcode
/// drops them. After a scan has started they may be what is left of a damaged one.
extern "C-unwind" fn emit_message(cinfo: &mut sys::jpeg_common_struct, level: c_int) {
    // SAFETY: `err` points to our error manager for the life of the codec structs.
    let code = unsafe { (*cinfo.err).msg_code } as sys::J_MESSAGE_CODE;
    let benign = [
        sys::JWRN_JFIF_MAJOR,
        sys::JWRN_ADOBE_XFORM,
        sys::JWRN_BOGUS_ICC,
    ];
    let in_header = cinfo.is_decompressor != 0 && {
        // SAFETY: a decompressor's `common` is the first field of its decompress struct,
        // which libjpeg hands us whole (its own code makes the same cast).
        let src = unsafe { &*std::ptr::from_mut(cinfo).cast::<sys::jpeg_decompress_struct>() };
        src.input_scan_number == 0
    };
    let stray_in_header = code == sys::JWRN_EXTRANEOUS_DATA && in_header;
    if level < 0 && !benign.contains(&code) && !stray_in_header {
        error_exit(cinfo);
    }
}

/// libjpeg's progress manager with the deadline behind it; `mgr` comes first, so the
/// pointer libjpeg holds is also a pointer to the whole.
#[repr(C)]
struct Progress {
    mgr: sys::jpeg_progress_mgr,
    deadline: *const Deadline,
}

extern "C-unwind" fn progress_monitor(cinfo: &mut sys::jpeg_common_struct) {
    // SAFETY: `progress` is only ever set to a boxed `Progress` whose deadline outlives the
    // codec (see `Codec::create`).
    let deadline = unsafe { &*(*cinfo.progress.cast::<Progress>()).deadline };
    if let Err(e) = deadline.check() {
        resume_unwind(Box::new(Overtime(e)));
    }
}

/// Where the compressor writes: a Rust buffer, so an error mid-write leaves nothing to free
/// by hand. `mgr` comes first, as in `Progress`.
#[repr(C)]
struct Sink {
    mgr: sys::jpeg_destination_mgr,
    data: Vec<u8>,
}

impl Sink {
    /// Points libjpeg at the unused part of `data`, after `used` bytes.
    fn expose(&mut self, used: usize) {
        self.mgr.next_output_byte = self.data[used..].as_mut_ptr();
        self.mgr.free_in_buffer = self.data.len() - used;
    }
}

/// # Safety
/// `cinfo.dest` must be the `mgr` of a live `Sink`, as `Codec::create` sets it.
unsafe fn sink(cinfo: &mut sys::jpeg_compress_struct) -> &mut Sink {
    unsafe { &mut *cinfo.dest.cast::<Sink>() }
}

extern "C-unwind" fn init_destination(cinfo: &mut sys::jpeg_compress_struct) {
    // SAFETY: installed only on a compressor whose `dest` is our `Sink`.
    unsafe { sink(cinfo) }.expose(0);
}

/// The buffer is full: double it.
extern "C-unwind" fn empty_output_buffer(cinfo: &mut sys::jpeg_compress_struct) -> sys::boolean {
    // SAFETY: as in `init_destination`.
    let sink = unsafe { sink(cinfo) };
    let used = sink.data.len();
    if sink.data.try_reserve_exact(used.max(4096)).is_err() {
        resume_unwind(Box::new(Failure(format!(
            "cannot grow the output past {used} bytes"
        ))));
    }
    sink.data.resize(sink.data.capacity(), 0);
    sink.expose(used);
    1
}

extern "C-unwind" fn term_destination(cinfo: &mut sys::jpeg_compress_struct) {
    // SAFETY: as in `init_destination`.
    let sink = unsafe { sink(cinfo) };
    let written = sink.data.len() - sink.mgr.free_in_buffer;
    sink.data.truncate(written);
}

/// Owns the libjpeg structs so they are destroyed on every path, unwinding included.
struct Codec<'d> {
    err: Box<sys::jpeg_error_mgr>,
    progress: Option<Box<Progress>>,
    sink: Box<Sink>,
    src: Box<sys::jpeg_decompress_struct>,
    dst: Box<sys::jpeg_compress_struct>,
    created: (bool, bool),
    deadline: PhantomData<&'d Deadline>,
}

impl<'d> Codec<'d> {
    /// `room` is the output buffer to start with (the input size: the output is about as big).
    fn new(room: usize, deadline: Option<&'d Deadline>) -> Result<Self> {
        let data = zeroed(room.max(4096))?;
        // SAFETY: all-zero is the documented starting state of these C structs.
        Ok(unsafe {
            Self {
                err: Box::new(std::mem::zeroed()),
                progress: deadline.map(|deadline| {
                    Box::new(Progress {
                        mgr: std::mem::zeroed(),
                        deadline,
                    })
                }),
                sink: Box::new(Sink {
                    mgr: std::mem::zeroed(),
                    data,
                }),
                src: Box::new(std::mem::zeroed()),
                dst: Box::new(std::mem::zeroed()),
                created: (false, false),
                deadline: PhantomData,
            }
        })
    }

    /// Runs libjpeg calls, turning the payloads they unwind with back into errors.
    fn run<T>(&mut self, work: impl FnOnce(&mut Self) -> T) -> Result<T> {
        catch_unwind(AssertUnwindSafe(|| work(self))).map_err(|payload| {
            match payload.downcast::<Failure>() {
                Ok(failure) => malformed(failure.0),
                Err(payload) => match payload.downcast::<Overtime>() {
                    Ok(overtime) => overtime.0,
                    Err(other) => resume_unwind(other),
                },
            }
        })
    }

    /// Creates the decompressor, and the compressor when `compress`, with our error
    /// manager and, given a deadline, our progress monitor.
    ///
    /// # Safety
    /// Call once, inside `run`.
    unsafe fn create(&mut self, compress: bool) {
        let progress = match self.progress.as_deref_mut() {
            Some(progress) => {
                progress.mgr.progress_monitor = Some(progress_monitor);
                std::ptr::from_mut(progress).cast::<sys::jpeg_progress_mgr>()
            }
            None => std::ptr::null_mut(),
        };
        // SAFETY: every pointer handed over is to a box the codec owns and outlives libjpeg's
        // use; `create_*` zero the structs but for `err`, so `progress` is set after.
        unsafe {
            sys::jpeg_std_error(&mut self.err);
            self.err.error_exit = Some(error_exit);
            self.err.emit_message = Some(emit_message);
            self.src.common.err = &mut *self.err;
            sys::jpeg_create_decompress(&mut *self.src);
            self.created.0 = true;
            self.src.common.progress = progress;
            if compress {
                self.dst.common.err = &mut *self.err;
                sys::jpeg_create_compress(&mut *self.dst);
                self.created.1 = true;
                self.dst.common.progress = progress;
                self.sink.mgr.init_destination = Some(init_destination);
                self.sink.mgr.empty_output_buffer = Some(empty_output_buffer);
                self.sink.mgr.term_destination = Some(term_destination);
                self.dst.dest = std::ptr::from_mut(&mut *self.sink).cast();
            }
        }
    }

    /// Destroys what was created; libjpeg then frees its memory pools and nulls `mem`.
    fn destroy(&mut self) {
        // SAFETY: each struct is destroyed once, and only if created.
        unsafe {
            if self.created.1 {
                sys::jpeg_destroy_compress(&mut self.dst);
            }
            if self.created.0 {
                sys::jpeg_destroy_decompress(&mut self.src);
            }
        }
        self.created = (false, false);
    }
}

impl Drop for Codec<'_> {
    fn drop(&mut self) {
        self.destroy();
    }
}

/// # Safety
/// Inside `Codec::run`, on a fresh codec.
unsafe fn read_pixels(codec: &mut Codec, bytes: &[u8], limits: &Limits) -> Result<Vec<Frame>> {
    unsafe {
        codec.create(false);
        let src = &mut *codec.src;
        sys::jpeg_mem_src(src, bytes.as_ptr(), bytes.len() as c_ulong);
        sys::jpeg_read_header(src, 1);
        let (width, height) = (src.image_width, src.image_height);
        limits.check(&Header::still(width, height))?;
        // Same coefficients, same pixels: no smoothing guessed into unfinished progressions.
        src.do_block_smoothing = 0;
        sys::jpeg_start_decompress(src);
        let channels = u8::try_from(src.output_components)
            .ok()
            .filter(|c| (1..=4).contains(c))
            .ok_or_else(|| malformed(format!("{} components", src.output_components)))?;
        let stride = src.output_width as usize * usize::from(channels);
        let len = stride
            .checked_mul(src.output_height as usize)
            .ok_or_else(|| malformed("image too large for this machine"))?;
        let mut data = zeroed(len)?;
        for row in data.chunks_exact_mut(stride) {
            let mut rows = [row.as_mut_ptr()];
            if sys::jpeg_read_scanlines(src, rows.as_mut_ptr(), 1) != 1 {
                return Err(malformed("scanline missing"));
            }
        }
        sys::jpeg_finish_decompress(src);
        let samples = Samples::new(channels, false, data);
        Ok(vec![Frame::still(
            src.output_width,
            src.output_height,
            samples,
        )])
    }
}

/// # Safety
/// Inside `Codec::run`, on a fresh codec.
unsafe fn transcode(codec: &mut Codec, bytes: &[u8], metadata: Metadata) {
    unsafe {
        codec.create(true);
        let src = &mut *codec.src;
        sys::jpeg_mem_src(src, bytes.as_ptr(), bytes.len() as c_ulong);
        let saved: &[c_int] = match metadata {
            Metadata::None => &[],
            Metadata::Essential => &[0xE1, 0xE2],
            Metadata::All => &[
                0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED,
                0xEE, 0xEF, 0xFE,
            ],
        };
        for &marker in saved {
            sys::jpeg_save_markers(src, marker, 0xFFFF);
        }
        sys::jpeg_read_header(src, 1);
        let coefficients = sys::jpeg_read_coefficients(src);

        // The deadline is checked while reading and once more here, not while writing:
        // mozjpeg's scan optimization keeps malloc'd scan buffers that an abort in
        // `jpeg_finish_compress` would leak (found by the `optimize` fuzz target).
        let dst = &mut *codec.dst;
        dst.common.progress = std::ptr::null_mut();
        if !src.common.progress.is_null() {
            progress_monitor(&mut src.common);
        }
        // Defaults include Huffman coding: arithmetic input comes out Huffman coded.
        sys::jpeg_copy_critical_parameters(src, dst);
        dst.optimize_coding = 1;
        sys::jpeg_simple_progression(dst);
        sys::jpeg_write_coefficients(dst, coefficients);
        copy_markers(src, dst, metadata);
        sys::jpeg_finish_compress(dst);
        sys::jpeg_finish_decompress(src);
    }
}

/// Writes the saved markers the policy keeps; under `Essential`, EXIF shrinks to orientation.
unsafe fn copy_markers(
    src: &sys::jpeg_decompress_struct,
    dst: &mut sys::jpeg_compress_struct,
    metadata: Metadata,
) {
    let mut node = src.marker_list;
    while !node.is_null() {
        // SAFETY: libjpeg's saved-marker list; each node's data holds data_length bytes.
        let marker = unsafe { &*node };
        let data = unsafe { std::slice::from_raw_parts(marker.data, marker.data_length as usize) };
        let jfif_written =
            dst.write_JFIF_header != 0 && marker.marker == 0xE0 && data.starts_with(b"JFIF\0");
        let out: Option<Vec<u8>> = match (metadata, marker.marker) {
            _ if jfif_written => None,
            (Metadata::Essential, 0xE1) => data
                .strip_prefix(b"Exif\0\0")
                .and_then(essential_exif)
                .map(|exif| [b"Exif\0\0".as_slice(), &exif].concat()),
            (Metadata::Essential, 0xE2) => {
                data.starts_with(b"ICC_PROFILE\0").then(|| data.to_vec())
            }
            (Metadata::All, _) => Some(data.to_vec()),
            _ => None,
        };
        if let Some(out) = out {
            // SAFETY: `dst` is between jpeg_write_coefficients and jpeg_finish_compress.
            unsafe {
                sys::jpeg_write_marker(dst, marker.marker.into(), out.as_ptr(), out.len() as u32);
            }
        }
        node = marker.next;
    }
}

/// Chroma subsampling of a lossy JPEG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chroma {
    /// 4:2:0, chroma at half resolution both ways.
    Half,
    /// 4:4:4, chroma at full resolution.
    Full,
}

/// ICC bytes an APP2 marker holds after its 14-byte header.
const ICC_PART: usize = 65519;

/// Largest ICC profile the APP2 markers can carry: 255 of them.
const MAX_ICC: usize = 255 * ICC_PART;

/// A lossy baseline-compatible progressive JPEG of `image` (alpha ignored: callers never send
/// transparent images) at mozjpeg `quality` (0 to 100), with trellis quantization and
/// optimized scans, carrying `icc` (if not empty) as APP2 markers. No EXIF: pixels are
/// already upright. An image whose pixels are all gray is written with one component, and `chroma` is then
/// moot, unless it carries a profile: an ICC profile describes RGB, and viewers drop an RGB
/// profile from a one-component JPEG. Fractional qualities count: the table scale is an integer percentage, truncated as
/// libjpeg does, so above 50 quality steps by 0.5 and a fraction moves to the finer table
/// (80.2 acts as 80.5); integer qualities give `jpeg_set_quality`'s tables exactly.
pub(crate) fn encode_lossy(
    image: &Rgba8,
    quality: f32,
    chroma: Chroma,
    icc: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let fail = |reason: String| Error::encode(Format::Jpeg, reason);
    if !(0.0..=100.0).contains(&quality) {
        return Err(fail(format!("quality {quality} is not within 0 to 100")));
    }
    let pixels = (image.width as usize).checked_mul(image.height as usize);
    if pixels.and_then(|p| p.checked_mul(4)) != Some(image.data.len()) {
        return Err(fail(format!(
            "{} bytes for a {}x{} RGBA image",
            image.data.len(),
            image.width,
            image.height
        )));
    }
    let icc = icc.filter(|profile| !profile.is_empty());
    if icc.is_some_and(|profile| profile.len() > MAX_ICC) {
        return Err(fail(format!("ICC profile over {MAX_ICC} bytes")));
    }
    let settings = Settings {
        quality,
        chroma,
        gray: icc.is_none() && is_gray(image),
    };
    let mut codec = Codec::new(image.data.len() / 8, None)?;
    // SAFETY: the codec's structs are boxed and outlive the call; errors unwind into `run`.
    codec
        .run(|codec| unsafe { compress(codec, image, settings, icc) })
        .map_err(|e| match e {
            Error::Decode { reason, .. } => fail(reason),
            other => other,
        })?;
    Ok(std::mem::take(&mut codec.sink.data))
}

/// The compressor's knobs for one lossy encode.
#[derive(Clone, Copy)]
struct Settings {
    quality: f32,
    chroma: Chroma,
    /// Write one gray component.
    gray: bool,
}

/// True when every pixel has R = G = B.
fn is_gray(image: &Rgba8) -> bool {
    image
        .data
        .chunks_exact(4)
        .all(|p| p[0] == p[1] && p[1] == p[2])
}

/// # Safety
/// Inside `Codec::run`, on a fresh codec; `image.data` holds `width * height` RGBA pixels.
unsafe fn compress(codec: &mut Codec, image: &Rgba8, settings: Settings, icc: Option<&[u8]>) {
    // SAFETY: libjpeg calls in its documented order on the codec's live compressor;
    // `comp_info` holds `num_components` entries after `jpeg_set_defaults`.
    unsafe {
        codec.create(true);
        let dst = &mut *codec.dst;
        dst.image_width = image.width;
        dst.image_height = image.height;
        (dst.input_components, dst.in_color_space) = if settings.gray {
            (1, sys::J_COLOR_SPACE::JCS_GRAYSCALE)
        } else {
            // The fourth byte, alpha, is skipped.
            (4, sys::J_COLOR_SPACE::JCS_EXT_RGBX)
        };
        // mozjpeg's default profile, JCP_MAX_COMPRESSION: progressive with optimized scans,
        // trellis quantization, optimized Huffman tables.
        sys::jpeg_set_defaults(dst);
        // mozjpeg's table 2 (tuned for MS-SSIM on Kodak) rather than its default 3: at the
        // same SSIMULACRA2 it was smaller on each of ten corpus photos and screenshots, 5 % in
        // total (README, "Lossy mode").
        sys::jpeg_c_set_int_param(dst, sys::J_INT_PARAM::JINT_BASE_QUANT_TBL_IDX, 2);
        let scale = sys::jpeg_float_quality_scaling(settings.quality) as c_int;
        sys::jpeg_set_linear_quality(dst, scale, 1);
        dst.optimize_coding = 1;
        if !settings.gray {
            let factor = match settings.chroma {
                Chroma::Half => 2,
                Chroma::Full => 1,
            };
            let count = dst.num_components as usize;
            let components = std::slice::from_raw_parts_mut(dst.comp_info, count);
            for (i, component) in components.iter_mut().enumerate() {
                let f = if i == 0 { factor } else { 1 };
                (component.h_samp_factor, component.v_samp_factor) = (f, f);
            }
        }
        sys::jpeg_start_compress(dst, 1);
        if let Some(profile) = icc {
            write_icc(dst, profile);
        }
        write_rows(dst, image, settings.gray);
        sys::jpeg_finish_compress(dst);
    }
}

/// Writes `profile` as APP2 `ICC_PROFILE` markers: tag, 1-based sequence number, count, then
/// up to `ICC_PART` bytes each (what `jpeg_write_icc_profile` does; mozjpeg-sys builds that
/// only with its `icc_io` feature).
///
/// # Safety
/// After `jpeg_start_compress`, before the first row, inside `Codec::run`; `profile` holds
/// 1 to `MAX_ICC` bytes.
unsafe fn write_icc(dst: &mut sys::jpeg_compress_struct, profile: &[u8]) {
    let count = profile.len().div_ceil(ICC_PART) as u8;
    for (i, part) in profile.chunks(ICC_PART).enumerate() {
        let mut marker = b"ICC_PROFILE\0".to_vec();
        marker.extend_from_slice(&[i as u8 + 1, count]);
        marker.extend_from_slice(part);
        // SAFETY: libjpeg copies `marker.len()` (at most 65533) bytes into the output.
        unsafe { sys::jpeg_write_marker(dst, 0xE2, marker.as_ptr(), marker.len() as u32) };
    }
}

/// Feeds the image row by row: RGBX as it is, or its first channel when gray.
///
/// # Safety
/// Between `jpeg_start_compress` and `jpeg_finish_compress`, inside `Codec::run`.
unsafe fn write_rows(dst: &mut sys::jpeg_compress_struct, image: &Rgba8, gray: bool) {
    let stride = image.width as usize * 4;
    let mut luma = vec![0u8; if gray { image.width as usize } else { 0 }];
    for row in image.data.chunks_exact(stride) {
        let line = if gray {
            for (out, pixel) in luma.iter_mut().zip(row.chunks_exact(4)) {
                *out = pixel[0];
            }
            luma.as_ptr()
        } else {
            row.as_ptr()
        };
        // SAFETY: `line` holds one row of `input_components` bytes a pixel; libjpeg reads it.
        unsafe { sys::jpeg_write_scanlines(dst, &line, 1) };
    }
}

/// The image as displayed before orientation: 8-bit gray or RGB from libjpeg. `None` for
/// what the lossy path cannot show faithfully (CMYK or YCCK, other precisions than 8).
/// Corrupt data is an error, as for the guard.
pub(crate) fn decode_display(bytes: &[u8], limits: &Limits) -> Result<Option<Frame>> {
    let sof = frame_header(bytes)?;
    if sof.precision != 8 || !matches!(sof.components, 1 | 3) {
        return Ok(None);
    }
    let frame = decode(bytes, limits)?.and_then(|frames| frames.into_iter().next());
    Ok(frame.filter(|f| matches!(f.samples.channels, 1 | 3)))
}

/// The marker segments before the first scan, as (marker, payload); ends early at anything
/// malformed. Stray bytes between segments are skipped, as in `frame_header`.
fn header_segments(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = if bytes.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        usize::MAX
    };
    std::iter::from_fn(move || {
        loop {
            let start = std::mem::replace(&mut pos, usize::MAX);
            let rest = bytes.get(start..)?;
            let junk = rest.iter().take_while(|&&b| b != 0xFF).count();
            let fill = rest[junk..].iter().take_while(|&&b| b == 0xFF).count();
            let at = start + junk + fill;
            match *bytes.get(at)? {
                0x00 | 0x01 | 0xD0..=0xD7 => pos = at + 1,
                0xD9 | 0xDA => return None,
                marker => {
                    let len = bytes
                        .get(at + 1..at + 3)
                        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
                        .filter(|&len| len >= 2)?;
                    let segment = bytes.get(at + 3..at + 1 + len)?;
                    pos = at + 1 + len;
                    return Some((marker, segment));
                }
            }
        }
    })
}

/// The ICC profile, reassembled from its APP2 `ICC_PROFILE` markers (sequence number, count,
/// data). `None` when absent, or when the markers disagree, miss or repeat a part.
pub(crate) fn icc(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut parts = Vec::new();
    for (_, segment) in header_segments(bytes).filter(|(marker, _)| *marker == 0xE2) {
        if let Some(part) = segment.strip_prefix(b"ICC_PROFILE\0") {
            let (&[seq, count], data) = part.split_first_chunk::<2>()?;
            parts.push((seq, count, data));
        }
    }
    let count = parts.first()?.1;
    parts.sort_by_key(|&(seq, _, _)| seq);
    let whole = parts.len() == usize::from(count)
        && parts
            .iter()
            .enumerate()
            .all(|(i, &(seq, n, _))| n == count && usize::from(seq) == i + 1);
    let profile: Vec<u8> = parts
        .iter()
        .flat_map(|&(_, _, data)| data)
        .copied()
        .collect();
    (whole && !profile.is_empty()).then_some(profile)
}

/// The EXIF orientation from the first APP1 `Exif` marker: 1 when absent or out of range.
pub(crate) fn orientation(bytes: &[u8]) -> u16 {
    header_segments(bytes)
        .filter(|(marker, _)| *marker == 0xE1)
        .find_map(|(_, segment)| segment.strip_prefix(b"Exif\0\0"))
        .and_then(exif_orientation)
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fixture(path: &str) -> Vec<u8> {
        let path = format!("{}/../corpus/{path}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// Every marker in the file, entropy-coded data skipped.
    fn markers(bytes: &[u8]) -> Vec<u8> {
        let mut found = Vec::new();
        let mut pos = 2;
        while pos + 1 < bytes.len() {
            if bytes[pos] != 0xFF || matches!(bytes[pos + 1], 0x00 | 0xFF | 0xD0..=0xD7) {
                pos += 1;
                continue;
            }
            let marker = bytes[pos + 1];
            found.push(marker);
            if marker == 0xD9 {
                break;
            }
            pos += 2 + usize::from(u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]));
        }
        found
    }

    fn is_decode_error(result: Result<crate::Optimized>) -> bool {
        matches!(
            result,
            Err(Error::Decode {
                format: Format::Jpeg,
                ..
            })
        )
    }

    #[test]
    fn extraneous_bytes_before_dht_are_dropped() {
        let input = fixture("jpeg/extraneous_bytes_before_dht_should_shrink.jpg");
        let out = crate::optimize(&input, &Options::default()).unwrap();
        assert!(out.changed && out.data.len() < input.len());
        let limits = Limits::default();
        assert_eq!(
            decode(&out.data, &limits).unwrap(),
            decode(&fixture("jpeg/huffman_testorig_should_shrink.jpg"), &limits).unwrap()
        );
    }

    #[test]
    fn damaged_scans_are_still_refused() {
        for name in ["bad/jpeg_corrupt_scan.jpg", "bad/jpeg_truncated.jpg"] {
            let result = crate::optimize(&fixture(name), &Options::default());
            assert!(is_decode_error(result), "{name}");
        }
    }

    #[test]
    fn stray_bytes_after_a_scan_are_refused() {
        let mut input = fixture("dev/tiny_flatfield.jpg");
        let eoi = input.len() - 2;
        input.splice(eoi..eoi, [0x00; 64]);
        assert!(is_decode_error(crate::optimize(
            &input,
            &Options::default()
        )));
    }

    #[test]
    fn arithmetic_jpeg_is_accepted_and_its_candidate_is_huffman() {
        let input = fixture("jpeg/arithmetic_testimgari_should_decode.jpg");
        let out = crate::optimize(&input, &Options::default()).unwrap();
        assert!(out.data.len() <= input.len());
        // Huffman coding is bigger here (5456 > 5126 bytes), so check the candidate itself.
        let attempt = optimize(&input, &Options::default(), &Deadline::new(None)).unwrap();
        let candidate = attempt.data.unwrap();
        let found = markers(&candidate);
        assert!(found.contains(&0xC2), "{found:x?}");
        assert!(
            !found.iter().any(|m| matches!(m, 0xC9..=0xCC)),
            "{found:x?}"
        );
        let limits = Limits::default();
        let same = decode(&candidate, &limits).unwrap() == decode(&input, &limits).unwrap();
        assert!(same, "candidate pixels differ");
    }

    #[test]
    fn precision12_jpeg_is_kept_as_is() {
        let input = fixture("jpeg/precision12_testorig12_should_stay.jpg");
        assert_eq!(probe(&input).unwrap().bytes_per_pixel, 0);
        let out = crate::optimize(&input, &Options::default()).unwrap();
        assert!(!out.changed);
        assert_eq!(out.data, input);
    }

    #[test]
    fn probe_reports_bytes_per_pixel() {
        let cases = [
            ("dev/tiny_flatfield.jpg", 1),
            ("jpeg/huffman_testorig_should_shrink.jpg", 3),
        ];
        for (name, expected) in cases {
            assert_eq!(probe(&fixture(name)).unwrap().bytes_per_pixel, expected);
        }
    }

    #[test]
    fn past_deadline_stops_the_transcode_and_frees_the_codec() {
        let input = fixture("jpeg/huffman_testorig_should_shrink.jpg");
        let deadline = Deadline::new(Some(Duration::from_nanos(1)));
        std::thread::sleep(Duration::from_millis(1));
        let result = optimize(&input, &Options::default(), &deadline);
        assert!(matches!(result, Err(Error::Deadline(_))));

        let mut codec = Codec::new(input.len(), Some(&deadline)).unwrap();
        // SAFETY: a fresh codec, inside `run`.
        let result = codec.run(|codec| unsafe { transcode(codec, &input, Metadata::All) });
        assert!(matches!(result, Err(Error::Deadline(_))));
        assert_eq!(codec.created, (true, true));
        codec.destroy();
        assert!(codec.src.common.mem.is_null() && codec.dst.common.mem.is_null());

        let relaxed = Deadline::new(None);
        assert!(optimize(&input, &Options::default(), &relaxed).is_ok());
    }

    /// A photo-like image: smooth colour gradients with some deterministic noise.
    fn photo(width: u32, height: u32) -> Rgba8 {
        let mut state = 0x2545_F491_u32;
        let mut noise = move || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 17) as i32 - 8
        };
        let mut data = Vec::new();
        for y in 0..height as i32 {
            for x in 0..width as i32 {
                let base = [x * 2, y * 2, 255 - x - y];
                for c in base {
                    data.push((c + noise()).clamp(0, 255) as u8);
                }
                data.push(255);
            }
        }
        Rgba8 {
            width,
            height,
            data,
        }
    }

    fn gray(image: &Rgba8) -> Rgba8 {
        let mut out = image.clone();
        for p in out.data.chunks_exact_mut(4) {
            (p[1], p[2]) = (p[0], p[0]);
        }
        out
    }

    /// Mean absolute difference over the colour channels of a decoded gray or RGB frame.
    fn mean_error(image: &Rgba8, frame: &Frame) -> f64 {
        let channels = usize::from(frame.samples.channels);
        let pixels = image
            .data
            .chunks_exact(4)
            .zip(frame.samples.data.chunks_exact(channels));
        let total: u64 = pixels
            .flat_map(|(a, b)| (0..3).map(move |c| a[c].abs_diff(b[c.min(channels - 1)])))
            .map(u64::from)
            .sum();
        total as f64 / (image.data.len() / 4 * 3) as f64
    }

    fn profile(len: usize) -> Vec<u8> {
        let mut icc: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        icc[..4].copy_from_slice(&(len as u32).to_be_bytes());
        icc[36..40].copy_from_slice(b"acsp");
        icc
    }

    #[test]
    fn lossy_encode_decodes_close_to_the_source() {
        let image = photo(128, 96);
        let out = encode_lossy(&image, 80.0, Chroma::Half, None).unwrap();
        assert_eq!(crate::format::detect(&out).unwrap(), Format::Jpeg);
        assert!(markers(&out).contains(&0xC2), "not progressive");
        let frame = decode_display(&out, &Limits::default()).unwrap().unwrap();
        assert_eq!(
            (frame.width, frame.height, frame.samples.channels),
            (128, 96, 3)
        );
        let error = mean_error(&image, &frame);
        assert!(error < 6.0, "mean error {error}");
        assert_eq!(out, encode_lossy(&image, 80.0, Chroma::Half, None).unwrap());
    }

    #[test]
    fn lower_quality_and_subsampling_are_smaller() {
        let image = photo(128, 96);
        let size = |quality, chroma| encode_lossy(&image, quality, chroma, None).unwrap().len();
        assert!(size(50.0, Chroma::Half) < size(90.0, Chroma::Half));
        assert!(size(80.0, Chroma::Half) < size(80.0, Chroma::Full));
        // The luma sampling factors in the frame header: 2x2 for 4:2:0, 1x1 for 4:4:4.
        for (chroma, factors) in [(Chroma::Half, 0x22), (Chroma::Full, 0x11)] {
            let out = encode_lossy(&image, 80.0, chroma, None).unwrap();
            let sof = out.windows(2).position(|m| m == [0xFF, 0xC2]).unwrap();
            assert_eq!(out[sof + 11], factors, "{chroma:?}");
        }
        // Above 50 a half step of quality is a step of the table scale, truncated.
        let encode = |quality| encode_lossy(&image, quality, Chroma::Half, None).unwrap();
        assert_ne!(encode(80.5), encode(80.0));
        assert_eq!(encode(80.2), encode(80.5));
    }

    #[test]
    fn gray_images_have_one_component() {
        let image = gray(&photo(64, 48));
        let out = encode_lossy(&image, 80.0, Chroma::Full, None).unwrap();
        assert_eq!(probe(&out).unwrap().bytes_per_pixel, 1);
        let frame = decode_display(&out, &Limits::default()).unwrap().unwrap();
        assert_eq!(frame.samples.channels, 1);
        assert!(mean_error(&image, &frame) < 6.0);
        let colour = encode_lossy(&photo(64, 48), 80.0, Chroma::Full, None).unwrap();
        assert_eq!(probe(&colour).unwrap().bytes_per_pixel, 3);
        // With a profile, which is RGB's, gray pixels keep three components.
        let tagged = encode_lossy(&image, 80.0, Chroma::Half, Some(&profile(3000))).unwrap();
        assert_eq!(probe(&tagged).unwrap().bytes_per_pixel, 3);
    }

    #[test]
    fn icc_profiles_round_trip_across_markers() {
        let image = photo(32, 32);
        for len in [3000, 70000] {
            let icc_in = profile(len);
            let out = encode_lossy(&image, 80.0, Chroma::Half, Some(&icc_in)).unwrap();
            let app2 = markers(&out).iter().filter(|&&m| m == 0xE2).count();
            assert_eq!(app2, len.div_ceil(65519), "{len}");
            assert!(icc(&out) == Some(icc_in), "{len}");
        }
        let plain = encode_lossy(&image, 80.0, Chroma::Half, None).unwrap();
        assert!(icc(&plain).is_none());
    }

    #[test]
    fn inconsistent_icc_markers_are_refused() {
        let out = encode_lossy(&photo(16, 16), 80.0, Chroma::Half, Some(&profile(70000))).unwrap();
        let second = out
            .windows(14)
            .rposition(|w| w.starts_with(b"ICC_PROFILE\0"))
            .unwrap();
        let mut repeated = out.clone();
        repeated[second + 12] = 1;
        assert!(icc(&repeated).is_none());
        let mut miscounted = out.clone();
        miscounted[second + 13] = 3;
        assert!(icc(&miscounted).is_none());
        // Cut inside the markers: refused; after them: whole.
        let end = second + 14 + (70000 - ICC_PART);
        for cut in (0..out.len()).step_by(101).chain([end - 1, end]) {
            assert_eq!(icc(&out[..cut]).is_some(), cut >= end, "{cut}");
            assert_eq!(orientation(&out[..cut]), 1);
        }
        assert_eq!(icc(b"\xFF\xD8\xFF\xE2\x00\x01"), None);
    }

    #[test]
    fn orientation_comes_from_the_exif_marker() {
        let out = encode_lossy(&photo(16, 16), 80.0, Chroma::Half, None).unwrap();
        assert_eq!(orientation(&out), 1);
        let with_exif = |payload: &[u8]| {
            let mut app1 = b"Exif\0\0".to_vec();
            app1.extend_from_slice(payload);
            let len = (app1.len() + 2) as u16;
            let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE1];
            bytes.extend_from_slice(&len.to_be_bytes());
            bytes.extend_from_slice(&app1);
            bytes.extend_from_slice(&out[2..]);
            bytes
        };
        let rotated = with_exif(&crate::metadata::exif_with_orientation(6));
        assert_eq!(orientation(&rotated), 6);
        assert!(
            decode_display(&rotated, &Limits::default())
                .unwrap()
                .is_some()
        );
        assert_eq!(
            orientation(&with_exif(&crate::metadata::exif_with_orientation(9))),
            1
        );
        assert_eq!(orientation(&with_exif(b"MM\0*garbage")), 1);
    }

    #[test]
    fn camera_file_metadata_is_read() {
        let input = fixture("dev/photo_rocket_icc_orient6.jpg");
        assert_eq!(orientation(&input), 6);
        let profile = icc(&input).unwrap();
        let declared = u32::from_be_bytes([profile[0], profile[1], profile[2], profile[3]]);
        assert_eq!(declared as usize, profile.len());
        assert_eq!(&profile[36..40], b"acsp");
    }

    #[test]
    fn bad_encoder_input_is_an_error() {
        let image = photo(8, 8);
        for quality in [f32::NAN, -1.0, 101.0] {
            assert!(encode_lossy(&image, quality, Chroma::Half, None).is_err());
        }
        let short = Rgba8 {
            data: image.data[4..].to_vec(),
            ..image.clone()
        };
        assert!(encode_lossy(&short, 80.0, Chroma::Half, None).is_err());
        let empty = Rgba8 {
            width: 0,
            height: 0,
            data: Vec::new(),
        };
        let result = encode_lossy(&empty, 80.0, Chroma::Half, None);
        assert!(matches!(result, Err(Error::Encode { .. })), "{result:?}");
    }

    #[test]
    fn cmyk_and_12_bit_are_not_displayed() {
        let limits = Limits::default();
        let input = fixture("jpeg/precision12_testorig12_should_stay.jpg");
        assert!(decode_display(&input, &limits).unwrap().is_none());
        // A four-component (CMYK or YCCK) frame header, not decoded at all.
        let mut cmyk = b"\xFF\xD8\xFF\xC0\x00\x14\x08\x00\x10\x00\x10\x04".to_vec();
        cmyk.extend_from_slice(&[1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0, 4, 0x11, 0]);
        assert!(decode_display(&cmyk, &limits).unwrap().is_none());
        let gray = fixture("dev/tiny_flatfield.jpg");
        let frame = decode_display(&gray, &limits).unwrap().unwrap();
        assert_eq!(frame.samples.channels, 1);
    }
}
