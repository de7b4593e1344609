"""The archive layer: a reproducible `tar.gz` writer and a bounded, strict in-memory reader.

Writer: POSIX ustar (never pax or GNU extensions, so no header can carry a time or an
owner), entries at the root sorted by name, regular files, mode 0644, uid/gid 0, empty
user and group names, mtime 0; then one gzip member with a fixed header (no file name,
mtime 0, XFL 2, OS 255 "unknown") around raw deflate at level 9. Same entries, same bytes.

Reader: decompresses at most `max_bytes` (a gzip bomb stops there), then walks the ustar
headers itself and accepts exactly the subset the writer produces: plain files with safe
root names, no links, devices, directories, extension headers or duplicates. Metadata
that means nothing in memory (order, mode, owners, times) is not judged; the content is
verified against the signed manifest afterwards.
"""

from __future__ import annotations

import io
import struct
import tarfile
import zlib
from collections.abc import Collection, Mapping

from byteor_cloud.deploybundle.errors import BundleError

COMPRESS_LEVEL = 9
# ID1 ID2, CM=deflate, FLG=0 (no name, comment, extra or header CRC), MTIME=0,
# XFL=2 (maximum compression, matching level 9), OS=255 (unknown: no build-host trace).
GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
FILE_MODE = 0o644

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_USTAR_MAGIC = b"ustar\x0000"  # magic "ustar\0" + version "00": POSIX.1-1988 ustar
_REGULAR = (b"0", b"\x00")  # REGTYPE and the pre-POSIX AREGTYPE
_INFLATE_CHUNK = 1 << 20
_TYPE_NAMES = {
    b"1": "hard link",
    b"2": "symbolic link",
    b"3": "character device",
    b"4": "block device",
    b"5": "directory",
    b"6": "FIFO",
    b"x": "pax extended header",
    b"g": "pax global header",
    b"L": "GNU long name",
    b"K": "GNU long link name",
}


def write_archive(entries: Mapping[str, bytes]) -> bytes:
    """The reproducible `tar.gz` of `entries` (name → content), sorted by name."""
    tar = _tar(entries)
    deflate = zlib.compressobj(
        COMPRESS_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS, zlib.DEF_MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY
    )
    body = deflate.compress(tar) + deflate.flush()
    trailer = struct.pack("<II", zlib.crc32(tar), len(tar) & 0xFFFFFFFF)
    return GZIP_HEADER + body + trailer


def _tar(entries: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(
        fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT, encoding="ascii"
    ) as tar:
        for name in sorted(entries, key=lambda n: n.encode("ascii")):
            content = entries[name]
            info = tarfile.TarInfo(name)
            info.type = tarfile.REGTYPE
            info.size = len(content)
            info.mode = FILE_MODE
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def read_archive(
    data: bytes, *, max_bytes: int, max_entries: int, names: Collection[str]
) -> dict[str, bytes]:
    """The files of a bundle archive, name → content, refusing anything unsafe or unknown
    (`names` are the entry names a bundle may have)."""
    if len(data) > max_bytes:
        raise BundleError("too_large", f"the archive is over {max_bytes} bytes")
    raw = _gunzip(data, max_bytes)
    return _untar(raw, max_bytes=max_bytes, max_entries=max_entries, names=names)


def _gunzip(data: bytes, max_bytes: int) -> bytearray:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip wrapper, nothing else
    out = bytearray()
    pending = data
    try:
        while not inflater.eof:
            # Never ask for more than one byte past the limit: output stays bounded
            # however well the input compresses.
            room = max_bytes + 1 - len(out)
            chunk = inflater.decompress(pending, min(room, _INFLATE_CHUNK))
            out += chunk
            if len(out) > max_bytes:
                raise BundleError("too_large", f"the archive inflates past {max_bytes} bytes")
            pending = inflater.unconsumed_tail
            if not chunk and not pending:
                break
    except zlib.error:
        raise BundleError("bundle_malformed", "not a valid gzip stream") from None
    if not inflater.eof:
        raise BundleError("bundle_malformed", "the gzip stream is truncated")
    if inflater.unused_data:
        raise BundleError("bundle_malformed", "data follows the gzip stream")
    return out


def _untar(
    raw: bytearray, *, max_bytes: int, max_entries: int, names: Collection[str]
) -> dict[str, bytes]:
    view = memoryview(raw)
    files: dict[str, bytes] = {}
    position = 0
    while True:
        if position + BLOCK > len(raw):
            raise BundleError("bundle_malformed", "the tar stream has no end-of-archive block")
        header = bytes(view[position : position + BLOCK])
        if header == _ZERO_BLOCK:
            if raw.count(0, position) != len(raw) - position:
                raise BundleError("bundle_malformed", "data follows the end-of-archive block")
            return files
        if len(files) == max_entries:
            raise BundleError("too_large", f"the archive has more than {max_entries} entries")
        name, size = _entry(header, max_bytes)
        start = position + BLOCK
        if start + size > len(raw):
            raise BundleError("bundle_malformed", f"entry {name!r} is truncated")
        if name in files:
            raise BundleError("unsafe_entry", f"entry {name!r} appears twice")
        if name not in names:
            raise BundleError("unexpected_file", f"{name!r} is not a bundle file")
        files[name] = bytes(view[start : start + size])
        position = start + -(-size // BLOCK) * BLOCK


def _entry(header: bytes, max_bytes: int) -> tuple[str, int]:
    """The name and size of a ustar header, or why it is refused."""
    stored_sum = _octal(header[148:156], "checksum")
    if stored_sum != sum(header[:148]) + 8 * ord(" ") + sum(header[156:]):
        raise BundleError("bundle_malformed", "a tar header checksum does not match")
    if header[257:265] != _USTAR_MAGIC:
        raise BundleError("bundle_malformed", "not a POSIX ustar archive")
    typeflag = header[156:157]
    if typeflag not in _REGULAR:
        kind = _TYPE_NAMES.get(typeflag, f"type {typeflag!r}")
        raise BundleError("unsafe_entry", f"the archive holds a {kind}, not a regular file")
    name = _name(header)
    size = _octal(header[124:136], "size")
    if size > max_bytes:
        raise BundleError("too_large", f"entry {name!r} claims {size} bytes")
    return name, size


def _name(header: bytes) -> str:
    try:
        name = header[0:100].split(b"\0", 1)[0].decode("ascii")
        prefix = header[345:500].split(b"\0", 1)[0].decode("ascii")
    except UnicodeDecodeError:
        raise BundleError("unsafe_entry", "an entry name is not ASCII") from None
    full = f"{prefix}/{name}" if prefix else name
    if (
        not full
        or full.startswith("/")
        or "\\" in full
        or any(ord(c) < 32 or ord(c) == 127 for c in full)
        or ".." in full.split("/")
    ):
        raise BundleError("unsafe_entry", f"unsafe entry name {full!r}")
    return full


def _octal(field: bytes, what: str) -> int:
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits or digits.strip(b"01234567"):
        raise BundleError("bundle_malformed", f"a tar header {what} is not octal")
    return int(digits, 8)
