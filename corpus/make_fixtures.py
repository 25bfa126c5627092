#!/usr/bin/env python3
"""Writes corpus/tiny (small images of every PNG colour type and bit depth, APNG, metadata,
WebP kinds) and corpus/bad (hostile inputs). Standard library only, plus cwebp/img2webp/webpmux
from Debian's `webp` package for the WebP files. Output is deterministic; run from corpus/."""
import os
import shutil
import struct
import subprocess
import tempfile
import zlib

TINY, BAD = "tiny", "bad"


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ihdr(w, h, depth, ctype, interlace=0):
    return chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))


SIG = b"\x89PNG\r\n\x1a\n"
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def pattern(w, h, depth, ctype, seed=0):
    """Rows of samples (ints) with flat areas, gradients and noise."""
    maxv = (1 << depth) - 1
    rows = []
    state = 12345 + seed
    for y in range(h):
        row = []
        for x in range(w):
            for c in range(CHANNELS[ctype]):
                state = (state * 1103515245 + 12345) & 0x7FFFFFFF
                if (x // 4 + y // 4) % 3 == 0:
                    v = maxv if c == 3 else (x * 7 + y * 3 + c * 50) % (maxv + 1)
                elif (x + y) % 5 == 0:
                    v = state % (maxv + 1)
                else:
                    v = (x * maxv) // max(w - 1, 1)
                row.append(v)
        rows.append(row)
    return rows


def pack_row(samples, depth):
    if depth == 16:
        return b"".join(struct.pack(">H", s) for s in samples)
    if depth == 8:
        return bytes(samples)
    out, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | s
        bits += depth
        if bits == 8:
            out.append(acc)
            acc, bits = 0, 0
    if bits:
        out.append(acc << (8 - bits))
    return bytes(out)


def raw_image(rows, depth, w, ctype, interlace):
    ch = CHANNELS[ctype]
    if not interlace:
        return b"".join(b"\0" + pack_row(r, depth) for r in rows)
    out = b""
    for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
        for y in range(y0, len(rows), dy):
            px = [rows[y][x * ch:(x + 1) * ch] for x in range(x0, w, dx)]
            if px:
                out += b"\0" + pack_row([s for p in px for s in p], depth)
    return out


def png(w, h, depth, ctype, extra=b"", level=0, interlace=0, seed=0, trns=None):
    rows = pattern(w, h, depth, ctype, seed)
    body = ihdr(w, h, depth, ctype, interlace)
    if ctype == 3:
        n = 1 << depth
        body += chunk(b"PLTE", bytes((i * 37 + k * 80) % 256 for i in range(n) for k in range(3)))
    if trns is not None:
        body += chunk(b"tRNS", trns)
    body += extra
    body += chunk(b"IDAT", zlib.compress(raw_image(rows, depth, w, ctype, interlace), level))
    return SIG + body + chunk(b"IEND", b"")


def exif(orientation):
    return b"MM\0*" + struct.pack(">IHHHIHHI", 8, 1, 0x0112, 3, 1, orientation, 0, 0)


def write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def apng(w, h, frames, level=0):
    body = ihdr(w, h, 8, 6) + chunk(b"acTL", struct.pack(">II", frames, 0))
    seq = 0
    for i in range(frames):
        fw, fh = (w, h) if i == 0 else (w // 2, h // 2)
        body += chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, fw, fh, i, i, 1, 10, 0, i % 2))
        seq += 1
        data = zlib.compress(raw_image(pattern(fw, fh, 8, 6, i), 8, fw, 6, 0), level)
        if i == 0:
            body += chunk(b"IDAT", data)
        else:
            body += chunk(b"fdAT", struct.pack(">I", seq) + data)
            seq += 1
    return SIG + body + chunk(b"IEND", b"")


def icc_profile():
    """The ICC profile of dev/photo_colorfulcups_icc_exif.jpg (its APP2 segment)."""
    data = open("dev/photo_colorfulcups_icc_exif.jpg", "rb").read()
    pos = 2
    while data[pos] == 0xFF:
        marker, length = data[pos + 1], struct.unpack(">H", data[pos + 2:pos + 4])[0]
        seg = data[pos + 4:pos + 2 + length]
        if marker == 0xE2 and seg.startswith(b"ICC_PROFILE\0"):
            return seg[14:]
        pos += 2 + length
    raise SystemExit("no ICC profile found")


def tiny():
    os.makedirs(TINY, exist_ok=True)
    for ctype, depths in {0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]}.items():
        for depth in depths:
            name = {0: "gray", 2: "rgb", 3: "palette", 4: "grayalpha", 6: "rgba"}[ctype]
            write(f"{TINY}/{name}{depth}_should_stay_exact.png", png(33, 17, depth, ctype))
    write(f"{TINY}/rgba8_stored_should_shrink.png", png(16, 16, 8, 6))
    write(f"{TINY}/rgba16_interlaced_should_stay_exact.png", png(37, 29, 16, 6, interlace=1))
    write(f"{TINY}/palette4_trns_should_keep_alpha.png", png(20, 20, 4, 3, trns=bytes([0, 128, 255, 7])))
    write(f"{TINY}/rgb8_trns_should_keep_alpha.png", png(20, 20, 8, 2, trns=struct.pack(">HHH", 0, 0, 0)))
    write(f"{TINY}/gray16_trns_should_keep_alpha.png", png(20, 20, 16, 0, trns=struct.pack(">H", 65535)))
    write(f"{TINY}/rgb8_exif_orient6_should_keep_orientation.png",
          png(24, 16, 8, 2, extra=chunk(b"eXIf", exif(6)) + chunk(b"tEXt", b"Comment\0drop me")))
    write(f"{TINY}/rgb8_iccp_should_keep_profile.png",
          png(24, 16, 8, 2, extra=chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(icc_profile()))))
    write(f"{TINY}/apng_3frames_should_stay_animated.png", apng(32, 32, 3))
    webps()


def webps():
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "src.png")
        write(src, png(64, 48, 8, 6, level=9))
        icc = os.path.join(tmp, "icc.icc")
        write(icc, icc_profile())
        lossless = f"{TINY}/webp_lossless_z0_should_shrink.webp"
        subprocess.run(["cwebp", "-quiet", "-lossless", "-exact", "-z", "0", src, "-o", lossless], check=True)
        subprocess.run(["webpmux", "-set", "icc", icc, lossless, "-o", f"{TINY}/webp_lossless_icc_should_keep_profile.webp"], check=True)
        subprocess.run(["cwebp", "-quiet", "-q", "80", src, "-o", f"{TINY}/webp_lossy_should_stay.webp"], check=True)
        frames = []
        for i in range(3):
            frame = os.path.join(tmp, f"f{i}.png")
            write(frame, png(32, 32, 8, 6, level=9, seed=i))
            frames.append(frame)
        subprocess.run(["img2webp", "-lossless", *frames, "-o", f"{TINY}/webp_anim_should_stay.webp"], check=True)


def zlib_bomb(size):
    return zlib.compress(b"\0" * size, 9)


def bad():
    os.makedirs(BAD, exist_ok=True)
    good = png(64, 64, 8, 6, level=9)
    write(f"{BAD}/empty.png", b"")
    write(f"{BAD}/signature_only.png", SIG)
    write(f"{BAD}/truncated_half.png", good[: len(good) // 2])
    write(f"{BAD}/truncated_no_iend.png", good[:-12])
    crc = bytearray(good)
    crc[-20] ^= 0xFF
    write(f"{BAD}/crc_error.png", bytes(crc))
    raw = raw_image(pattern(64, 64, 8, 6), 8, 64, 6, 0)
    broken = bytearray(zlib.compress(raw, 9))
    broken[len(broken) // 2] ^= 0x55
    write(f"{BAD}/bad_zlib.png", SIG + ihdr(64, 64, 8, 6) + chunk(b"IDAT", bytes(broken)) + chunk(b"IEND", b""))
    write(f"{BAD}/zero_width.png", SIG + ihdr(0, 16, 8, 0) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    write(f"{BAD}/bomb_claims_100000x100000.png",
          SIG + ihdr(100000, 100000, 8, 6) + chunk(b"IDAT", zlib_bomb(1 << 20)) + chunk(b"IEND", b""))
    write(f"{BAD}/bomb_idat_inflates_past_image.png",
          SIG + ihdr(16, 16, 8, 0) + chunk(b"IDAT", zlib_bomb(64 << 20)) + chunk(b"IEND", b""))
    write(f"{BAD}/huge_chunk_length.png", SIG + ihdr(16, 16, 8, 0) + struct.pack(">I", 0x7FFFFFF0) + b"IDAT" + b"\0" * 64)
    write(f"{BAD}/ztxt_bomb.png", good[:33] + chunk(b"zTXt", b"Comment\0\0" + zlib_bomb(256 << 20)) + good[33:])
    write(f"{BAD}/iccp_bomb.png", good[:33] + chunk(b"iCCP", b"x\0\0" + zlib_bomb(256 << 20)) + good[33:])
    write(f"{BAD}/apng_claims_a_billion_frames.png",
          SIG + ihdr(16, 16, 8, 0) + chunk(b"acTL", struct.pack(">II", 10**9, 0)) + good[33:])
    # GIF: a 65535x65535 logical screen holding one 1x1 frame.
    gif = b"GIF89a" + struct.pack("<HHBBB", 65535, 65535, 0x80, 0, 0) + b"\0\0\0\xff\xff\xff"
    gif += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00\x3b"
    write(f"{BAD}/gif_huge_logical_screen.gif", gif)
    write(f"{BAD}/gif_truncated.gif", open("dev/anim_parallax.gif", "rb").read()[:5000])
    webp = open(f"{TINY}/webp_lossless_z0_should_shrink.webp", "rb").read()
    write(f"{BAD}/webp_riff_size_too_big.webp", webp[:4] + struct.pack("<I", 0x7FFFFFF0) + webp[8:])
    write(f"{BAD}/webp_truncated.webp", webp[: len(webp) // 2])
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\0\0\0\0" + (0xFFFFFF).to_bytes(3, "little") * 2
    body = b"WEBP" + vp8x + webp[12:]
    write(f"{BAD}/webp_canvas_16777216_square.webp", b"RIFF" + struct.pack("<I", len(body)) + body)
    jpeg = open("dev/tiny_flatfield.jpg", "rb").read()
    write(f"{BAD}/jpeg_truncated.jpg", jpeg[: len(jpeg) * 2 // 3])
    sos = jpeg.index(b"\xff\xda")
    corrupt = bytearray(jpeg)
    for i in range(sos + 40, len(jpeg) - 40, 7):
        corrupt[i] = 0xFF if corrupt[i] != 0xFF else 0x00
    write(f"{BAD}/jpeg_corrupt_scan.jpg", bytes(corrupt))
    sof = jpeg.index(b"\xff\xc0")
    huge = bytearray(jpeg)
    huge[sof + 5:sof + 9] = struct.pack(">HH", 65500, 65500)
    write(f"{BAD}/jpeg_claims_65500x65500.jpg", bytes(huge))
    write(f"{BAD}/text_named_as.png", b"hello, this is not an image\n")
    write(f"{BAD}/html_named_as.jpg", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>\n")
    write(f"{BAD}/avif_box_past_end.avif", struct.pack(">I", 24) + b"ftypavif" + b"\0\0\0\0avif" + struct.pack(">I", 4096) + b"meta")


if __name__ == "__main__":
    tiny()
    bad()
