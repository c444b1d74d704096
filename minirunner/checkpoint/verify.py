"""Checking a checkpoint file against the CRC-32s its zip directory stores.

``torch.save`` writes a zip archive whose central directory holds a CRC-32 of every record,
but torch reads records without checking them (it is built with
``MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS``): a truncated file fails to open, while a flipped
byte in tensor data loads silently. :func:`verify_checkpoint` recomputes those CRC-32s before
a load. The check costs nothing when saving, since torch computes the CRCs anyway.
"""

from __future__ import annotations

import mmap
import os
import struct
import zipfile
import zlib

from .errors import CorruptCheckpointError

ZIP_LOCAL_HEADER = b"PK\x03\x04"
_MSDOS_FOLDER = 0x10  # the folder bit of a zip record's external attributes
_CRC_CHUNK = 64 << 20  # bytes per zlib.crc32 call: large enough to release the GIL usefully


def verify_checkpoint(path: str) -> bool:
    """Check that ``path`` is complete and every record matches its stored CRC-32.

    Returns True when verified, False when the file cannot be verified (torch's legacy
    non-zip format, or a zip written with CRC computation switched off).

    Raises:
        CorruptCheckpointError: the file is truncated or a record fails its check.
    """
    if os.path.isdir(path):
        from .sharded import verify_checkpoint_dir  # a sharded checkpoint

        verify_checkpoint_dir(path)
        return True
    with open(path, "rb") as handle:
        if handle.read(4) != ZIP_LOCAL_HEADER:
            handle.seek(0)
            if handle.read(1) in (b"\x80", b""):  # a pickle (legacy format) or nothing
                if os.fstat(handle.fileno()).st_size == 0:
                    raise CorruptCheckpointError(f"{path} is empty")
                return False
            raise CorruptCheckpointError(f"{path} is not a checkpoint torch can read (unknown file format)")
        try:
            records = zipfile.ZipFile(handle).infolist()
        # zipfile raises many kinds of error on a damaged directory (NotImplementedError for
        # a flipped version or method field, ValueError, struct.error, ...).
        except (zipfile.BadZipFile, OSError, ValueError, struct.error, NotImplementedError, EOFError, KeyError) as error:
            raise CorruptCheckpointError(
                f"{path} is truncated or damaged: its zip directory cannot be read ({error})"
            ) from None
        if all(record.CRC == 0 for record in records if record.file_size):
            return False
        size = os.fstat(handle.fileno()).st_size
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            for record in records:
                _check_record(path, mapped, size, record)
    return True


def _check_record(path: str, mapped: mmap.mmap, size: int, record: zipfile.ZipInfo) -> None:
    start = record.header_offset
    header = mapped[start : start + 30]
    if len(header) < 30 or header[:4] != ZIP_LOCAL_HEADER:
        raise CorruptCheckpointError(f"{path} is damaged: the header of record {record.filename!r} is broken")
    if record.external_attr & _MSDOS_FOLDER or record.filename.endswith("/"):
        # torch's reader skips a record marked as a folder and leaves the tensor's memory
        # uninitialised: one flipped bit in the directory would load garbage silently.
        raise CorruptCheckpointError(f"{path} is damaged: record {record.filename!r} is marked as a folder")
    if record.compress_type != zipfile.ZIP_STORED:
        _check_compressed_record(path, mapped, record)
        return
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    begin = start + 30 + name_length + extra_length
    end = begin + record.file_size
    if end > size:
        raise CorruptCheckpointError(
            f"{path} is truncated or damaged: record {record.filename!r} runs past the end of the file"
        )
    crc = 0
    view = memoryview(mapped)
    try:
        for offset in range(begin, end, _CRC_CHUNK):
            crc = zlib.crc32(view[offset : min(offset + _CRC_CHUNK, end)], crc)
    finally:
        view.release()
    if crc != record.CRC:
        raise CorruptCheckpointError(
            f"{path} is damaged: record {record.filename!r} fails its CRC-32 check "
            f"(stored {record.CRC:08x}, computed {crc:08x})"
        )


def _check_compressed_record(path: str, mapped: mmap.mmap, record: zipfile.ZipInfo) -> None:
    # torch never compresses records; another writer might. zipfile checks the CRC itself.
    try:
        with zipfile.ZipFile(_MappedFile(mapped)).open(record) as stream:
            while stream.read(_CRC_CHUNK):
                pass
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError, ValueError) as error:
        raise CorruptCheckpointError(f"{path} is damaged: record {record.filename!r}: {error}") from None


class _MappedFile:
    """A minimal read-only file object over an mmap, for zipfile."""

    def __init__(self, mapped: mmap.mmap) -> None:
        self._mapped = mapped
        self._position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, len(self._mapped))[whence]
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, count: int = -1) -> bytes:
        end = len(self._mapped) if count is None or count < 0 else self._position + count
        data = self._mapped[self._position : end]
        self._position += len(data)
        return data

    def seekable(self) -> bool:
        return True
