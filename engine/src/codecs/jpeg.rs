//! JPEG: lossless transcode with mozjpeg (coefficients kept, progressive scans, optimized
//! Huffman tables). libjpeg reports errors by calling `error_exit`; ours unwinds, and the
//! unwinding stops in this file.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_int, c_ulong, c_void};
use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use image::ImageDecoder;
use mozjpeg_sys as sys;

use super::Attempt;
use crate::error::{Error, Result};
use crate::format::Format;
use crate::guard::{Frame, Samples};
use crate::limits::{Header, Limits};
use crate::metadata::essential_exif;
use crate::options::{Metadata, Options};
use crate::pipeline::zeroed;

fn malformed(reason: impl std::fmt::Display) -> Error {
    Error::decode(Format::Jpeg, reason)
}

pub(super) fn probe(bytes: &[u8]) -> Result<Header> {
    let mut pos = 2;
    let mut metadata = 0u64;
    loop {
        let rest = bytes.get(pos..).unwrap_or_default();
        let fill = rest.iter().take_while(|&&b| b == 0xFF).count();
        if fill == 0 {
            return Err(malformed("expected a marker"));
        }
        let marker = *rest
            .get(fill)
            .ok_or_else(|| malformed("truncated header"))?;
        pos += fill + 1;
        if matches!(marker, 0x01 | 0xD0..=0xD7) {
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
                let dims = segment
                    .get(1..5)
                    .ok_or_else(|| malformed("short frame header"))?;
                let height = u32::from(u16::from_be_bytes([dims[0], dims[1]]));
                let width = u32::from(u16::from_be_bytes([dims[2], dims[3]]));
                if width == 0 || height == 0 {
                    return Err(malformed(format!("zero-sized frame {width}x{height}")));
                }
                let mut header = Header::still(width, height);
                header.metadata_bytes = metadata;
                return Ok(header);
            }
            0xE0..=0xEF | 0xFE => metadata += segment.len() as u64,
            0xDA | 0xD9 => return Err(malformed("no frame header before the scan")),
            _ => {}
        }
        pos += len;
    }
}

pub(super) fn decode(bytes: &[u8], limits: &Limits) -> Result<Vec<Frame>> {
    let mut decoder =
        image::codecs::jpeg::JpegDecoder::new(Cursor::new(bytes)).map_err(malformed)?;
    let mut image_limits = image::Limits::default();
    image_limits.max_alloc = Some(limits.max_pixels.saturating_mul(4));
    decoder.set_limits(image_limits).map_err(malformed)?;
    let (width, height) = decoder.dimensions();
    let channels = decoder.color_type().channel_count();
    let mut data = zeroed(usize::try_from(decoder.total_bytes()).unwrap_or(usize::MAX))?;
    decoder.read_image(&mut data).map_err(malformed)?;
    let samples = Samples::new(channels, false, data);
    Ok(vec![Frame::still(width, height, samples)])
}

pub(super) fn optimize(bytes: &[u8], options: &Options) -> Result<Attempt> {
    let data = transcode(bytes, options.metadata).map_err(malformed)?;
    Ok(Attempt {
        data: Some(data),
        actions: vec!["jpeg: mozjpeg lossless transcode, progressive, optimized Huffman".into()],
    })
}

/// A libjpeg failure carried by the unwinding `error_exit`.
struct Failure(String);

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

/// Warnings on corrupt data are fatal: a damaged scan must not come back re-encoded.
extern "C-unwind" fn emit_message(cinfo: &mut sys::jpeg_common_struct, level: c_int) {
    // SAFETY: `err` points to our error manager for the life of the codec structs.
    let code = unsafe { (*cinfo.err).msg_code };
    let benign = [
        sys::JWRN_JFIF_MAJOR,
        sys::JWRN_ADOBE_XFORM,
        sys::JWRN_BOGUS_ICC,
    ];
    if level < 0 && !benign.contains(&(code as sys::J_MESSAGE_CODE)) {
        error_exit(cinfo);
    }
}

unsafe extern "C" {
    fn free(ptr: *mut c_void);
}

/// Owns the libjpeg structs so they are destroyed on every path, unwinding included.
struct Codec {
    err: Box<sys::jpeg_error_mgr>,
    src: Box<sys::jpeg_decompress_struct>,
    dst: Box<sys::jpeg_compress_struct>,
    out: *mut u8,
    out_len: c_ulong,
    created: (bool, bool),
}

impl Drop for Codec {
    fn drop(&mut self) {
        // SAFETY: each struct is destroyed only if created; the output buffer came from malloc.
        unsafe {
            if self.created.1 {
                sys::jpeg_destroy_compress(&mut self.dst);
            }
            if self.created.0 {
                sys::jpeg_destroy_decompress(&mut self.src);
            }
            if !self.out.is_null() {
                free(self.out.cast());
            }
        }
    }
}

fn transcode(bytes: &[u8], metadata: Metadata) -> Result<Vec<u8>, String> {
    // SAFETY: all-zero is the documented starting state of these C structs.
    let mut codec = unsafe {
        Codec {
            err: Box::new(std::mem::zeroed()),
            src: Box::new(std::mem::zeroed()),
            dst: Box::new(std::mem::zeroed()),
            out: std::ptr::null_mut(),
            out_len: 0,
            created: (false, false),
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the structs are boxed (they do not move), outlive every libjpeg call, and
        // libjpeg errors unwind out of here into `catch_unwind`.
        unsafe { run(&mut codec, bytes, metadata) }
    }));
    match result {
        Ok(()) => {
            // SAFETY: libjpeg wrote `out_len` bytes at `out`.
            let data = unsafe { std::slice::from_raw_parts(codec.out, codec.out_len as usize) };
            Ok(data.to_vec())
        }
        Err(payload) => match payload.downcast::<Failure>() {
            Ok(failure) => Err(failure.0),
            Err(other) => resume_unwind(other),
        },
    }
}

unsafe fn run(codec: &mut Codec, bytes: &[u8], metadata: Metadata) {
    unsafe {
        sys::jpeg_std_error(&mut codec.err);
        codec.err.error_exit = Some(error_exit);
        codec.err.emit_message = Some(emit_message);
        codec.src.common.err = &mut *codec.err;
        sys::jpeg_create_decompress(&mut *codec.src);
        codec.created.0 = true;
        codec.dst.common.err = &mut *codec.err;
        sys::jpeg_create_compress(&mut *codec.dst);
        codec.created.1 = true;

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

        let dst = &mut *codec.dst;
        sys::jpeg_copy_critical_parameters(src, dst);
        dst.optimize_coding = 1;
        sys::jpeg_simple_progression(dst);
        sys::jpeg_mem_dest(dst, &mut codec.out, &mut codec.out_len);
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
