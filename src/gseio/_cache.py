"""A disk cache of parsed units: an interrupted build, restarted, reuses the units already parsed.

Each unit's pieces are stored in one file named after a digest of everything parsing
depends on (the format, the files' names and the SHA-256 of their bytes, the reader
options and the content of option files such as ``tx2gene``, the gseio version), so a
changed input or option is simply a different key: stale entries are never consulted,
never invalidated. Keys hash content, not sizes and modification times: an edit that
keeps both (``cp -p``, ``rsync -t``, ``touch -r``) is a miss like any other edit. The
engine hashes every input anyway (for the build report) and passes the digests in. Gene lists, which thousands of
per-cell files share, are stored once each in their own file and referenced by id.

Files are written under a temporary name, flushed, fsync-ed and renamed into place, so
a process killed at any moment (Ctrl-C, kill -9, power loss) leaves either no entry or a
complete one. Every file carries a blake2b checksum of its contents; a file that fails
it (truncated, corrupted) is a miss. The layout is a JSON header followed by raw,
16-byte aligned array buffers: no pickle, and a read is one ``readinto`` plus views.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from ._piece import GeneBlock, Piece
from ._source import Source
from ._unit import ReadOptions, Unit
from ._version import __version__
from .errors import GseioError, OutputError

logger = logging.getLogger(__name__)

__all__ = ["UnitCache", "remove_cache"]

_MAGIC = b"GSEIOC\x00\x01"  # the last byte is the layout version: a new layout misses old files
_DIGEST = 32
_PREFIX = len(_MAGIC) + _DIGEST + 8  # magic, checksum, header length
_ALIGN = 16
_TMP = ".tmp-"
_STALE_SECONDS = 3600  # temporary files older than this were left by a killed process
_MEMO = 256  # gene blocks remembered per instance (the assembler keys its own maps by block.key)
# what a damaged or foreign file can make the decoder raise; get() turns each into a miss
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError)


class UnitCache:
    """Parsed units on disk, keyed by their inputs and reader options; safe across threads.

    Parameters
    ----------
    folder
        Where entries live (created if needed). ``<key>.unit`` files hold a unit's
        pieces; ``genes-<key>-<digest>.bin`` files hold one gene list each.

    Raises
    ------
    ~gseio.errors.OutputError
        The folder cannot be created (a file of that name, a read-only file system).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except FileExistsError as e:
            raise OutputError(
                "is a file, not a folder for the unit cache: remove it, or build without the cache (--no-resume)",
                path=self.folder,
            ) from e
        except OSError as e:
            raise OutputError(
                f"the unit cache cannot be created: {e.strerror or e}; build without it (--no-resume) or "
                "write the outputs elsewhere (-o)",
                path=self.folder,
            ) from e
        self._lock = threading.Lock()
        self._blocks: dict[str, GeneBlock] = {}  # block id -> the one object get() returns
        self._stored: dict[int, tuple[GeneBlock, str]] = {}  # id(block) -> (block kept alive, block id)
        self._written: set[str] = set()  # block files this instance wrote (equal blocks, other objects)
        self._option_files: dict[tuple[Any, ...], tuple[int, str]] = {}  # option file state -> digest
        self._warned = False
        cutoff = time.time() - _STALE_SECONDS
        for path in self.folder.glob(f"{_TMP}*"):  # recent ones may belong to a build still running
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def key(self, unit: Unit, options: ReadOptions, checksums: Mapping[str, tuple[int, str]] | None = None) -> str:
        """Digest of the unit's format, files (role, name, size, SHA-256) and parsing options.

        ``checksums`` (``role -> (size, SHA-256)`` of the raw bytes, as the engine computes
        them for the report) saves hashing the files again. Raises :class:`OSError` or a
        :class:`~gseio.errors.InputError` when a file cannot be read.
        """
        from .report import checksum

        sources = []
        for role, source in sorted(unit.sources.items()):
            size, sha = checksums[role] if checksums is not None and role in checksums else checksum(source)
            sources.append([role, source.rel, size, sha])
        settings: dict[str, Any] = {}
        for option in fields(ReadOptions):
            if option.name == "cache":  # the build's in-memory gene cache: no input of parsing
                continue
            value = getattr(options, option.name)
            if value is not None and (option.name == "tx2gene" or isinstance(value, os.PathLike)):
                value = [os.fspath(value), *self._file_digest(Path(value))]
            settings[option.name] = value
        text = json.dumps([_MAGIC.hex(), __version__, unit.format, sources, settings], default=str)
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()

    def _file_digest(self, path: Path) -> tuple[int, str]:
        """Size and SHA-256 of an option's file (a tx2gene table, a GTF).

        Hashed once per instance and file state (the change time, which ``touch -r`` cannot set
        back): a build hashes a GTF once, not once per unit.
        """
        from .report import checksum

        stat = os.stat(path)
        state = (os.fspath(path), stat.st_ino, stat.st_size, stat.st_ctime_ns)
        with self._lock:
            known = self._option_files.get(state)
        if known is None:
            known = checksum(Source.file(path))
            with self._lock:
                self._option_files[state] = known
        return known

    def get(
        self, unit: Unit, options: ReadOptions, checksums: Mapping[str, tuple[int, str]] | None = None
    ) -> list[Piece] | None:
        """The unit's cached pieces, or ``None`` when absent, stale or unreadable (never raises).

        ``checksums``: the files' sizes and SHA-256 when known (see :meth:`key`).
        """
        try:
            key = self.key(unit, options, checksums)
            header, buf, base = _read(self.folder / f"{key}.unit")
            if header["key"] != key:
                return None
            return [self._decode_piece(entry, buf, base) for entry in header["pieces"]]
        except FileNotFoundError:
            return None
        except (*_UNREADABLE, GseioError) as e:
            logger.debug("cache entry of %s unreadable, parsing again: %s", unit.name, e)
            return None

    def put(
        self,
        unit: Unit,
        options: ReadOptions,
        pieces: list[Piece],
        checksums: Mapping[str, tuple[int, str]] | None = None,
    ) -> None:
        """Store the unit's pieces durably and atomically (``checksums`` as for :meth:`get`).

        A unit whose pieces hold values this cache cannot store exactly (e.g. arbitrary
        objects) is not cached; a full or read-only disk is logged once. Neither raises:
        the build goes on without the cache.
        """
        try:
            key = self.key(unit, options, checksums)
            out = _Buffers()
            entries = [self._encode_piece(piece, out) for piece in pieces]
            _, parts = _pack({"key": key, "pieces": entries}, out)
            self._write(f"{key}.unit", parts)
        except (TypeError, GseioError) as e:  # uncacheable values, or an input gone unreadable
            logger.debug("%s not cached: %s", unit.name, e)
        except OSError as e:
            if not self._warned:
                self._warned = True
                logger.warning("cannot write the unit cache in %s (%s); going on without it", self.folder, e)

    def clear(self) -> None:
        """Remove every entry and, when nothing else is left in it, the folder."""
        with self._lock:
            self._blocks.clear()
            self._stored.clear()
            self._written.clear()
        remove_cache(self.folder)

    def _encode_piece(self, piece: Piece, out: _Buffers) -> dict[str, Any]:
        return {
            "source": piece.source,
            "values": piece.values,
            "notes": piece.notes,
            "genes": self._store_block(piece.genes),
            "cells": _encode_strings(piece.cells, out),
            "indptr": _encode(piece.indptr, out),
            "indices": _encode(piece.indices, out),
            "data": _encode(piece.data, out),
            "obs": {name: _encode(values, out) for name, values in piece.obs.items()},
        }

    def _decode_piece(self, entry: dict[str, Any], buf: bytearray, base: int) -> Piece:
        return Piece(
            source=entry["source"],
            cells=_decode_strings(entry["cells"], buf, base),
            genes=self._load_block(entry["genes"]),
            indptr=_decode(entry["indptr"], buf, base),
            indices=_decode(entry["indices"], buf, base),
            data=_decode(entry["data"], buf, base),
            obs={name: _decode(spec, buf, base) for name, spec in entry["obs"].items()},
            values=entry["values"],
            notes=entry["notes"],
        )

    def _store_block(self, block: GeneBlock) -> str:
        """Write a gene list once per process; its id names its content, not only its names."""
        with self._lock:
            known = self._stored.get(id(block))
        if known is not None and known[0] is block:
            return known[1]
        out = _Buffers()
        header = {
            "key": block.key,
            "n_duplicates": int(block.n_duplicates),
            "names": _encode(np.asarray(block.names, dtype=object), out),
            "annotations": {name: _encode(np.asarray(v), out) for name, v in block.annotations.items()},
        }
        digest, parts = _pack(header, out)
        # equal names with other annotations or duplicate counts are another block: the
        # content digest in the id keeps them apart, the key keeps ids readable
        block_id = f"{block.key}-{digest[:8].hex()}"
        if block_id not in self._written:
            self._write(f"genes-{block_id}.bin", parts)
        with self._lock:
            self._written.add(block_id)
            self._stored[id(block)] = (block, block_id)
            self._blocks.setdefault(block_id, block)
            _trim(self._stored)
            _trim(self._blocks)
        return block_id

    def _load_block(self, block_id: str) -> GeneBlock:
        with self._lock:
            block = self._blocks.get(block_id)
        if block is not None:
            return block
        if "/" in block_id or "\\" in block_id:
            raise ValueError(f"invalid gene block id {block_id!r}")
        header, buf, base = _read(self.folder / f"genes-{block_id}.bin")
        block = GeneBlock(
            names=_decode(header["names"], buf, base),
            key=header["key"],
            n_duplicates=header["n_duplicates"],
            annotations={name: _decode(spec, buf, base) for name, spec in header["annotations"].items()},
        )
        with self._lock:  # another thread may have loaded it meanwhile: everyone gets the first
            block = self._blocks.setdefault(block_id, block)
            _trim(self._blocks)
        return block

    def _write(self, name: str, parts: list[Any]) -> None:
        try:
            fd, tmp = tempfile.mkstemp(prefix=_TMP, dir=self.folder)
        except FileNotFoundError:  # the folder was cleared while this instance lived
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=_TMP, dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as f:
                for part in parts:
                    f.write(part)
                f.flush()
                os.fsync(f.fileno())  # the bytes are on disk before the name points at them
            # no fsync of the folder: after a power loss the rename may be lost, which is a miss
            os.replace(tmp, self.folder / name)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def remove_cache(folder: Path) -> None:
    """Remove a cache folder's entries and, when nothing else is left in it, the folder; never raises.

    Only the cache's own files (plain files named like entries) are removed: not what a
    user keeps there, and nothing at all when ``folder`` is a symbolic link or not a folder.
    """
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return
    with contextlib.suppress(OSError):
        for path in folder.iterdir():
            if (
                (path.suffix == ".unit" or path.name.startswith((_TMP, "genes-")))
                and path.is_file()
                and (not path.is_symlink())
            ):
                with contextlib.suppress(OSError):
                    path.unlink()
    with contextlib.suppress(OSError):  # files the user keeps there stay, and so does the folder
        folder.rmdir()


class _Buffers:
    """The raw buffers of one file, each at an aligned offset from the start of the data area."""

    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.size = 0

    def add(self, data: np.ndarray) -> list[int]:
        pad = -self.size % _ALIGN
        if pad:
            self.parts.append(bytes(pad))
            self.size += pad
        self.parts.append(memoryview(data))
        offset, self.size = self.size, self.size + data.nbytes
        return [offset, data.nbytes]


def _pack(header: dict[str, Any], out: _Buffers) -> tuple[bytes, list[Any]]:
    """A file's parts: magic, checksum, header length, header, padding, buffers; and the checksum."""
    head = json.dumps(header, separators=(",", ":")).encode()  # ASCII: lone surrogates are escaped
    lead = len(head).to_bytes(8, "little") + head + bytes(-(_PREFIX + len(head)) % _ALIGN)
    digest = hashlib.blake2b(lead, digest_size=_DIGEST)
    for part in out.parts:
        digest.update(part)
    checksum = digest.digest()
    return checksum, [_MAGIC, checksum, lead, *out.parts]


def _read(path: Path) -> tuple[dict[str, Any], bytearray, int]:
    """A verified file's header, its bytes (writable: arrays are views on them) and data offset."""
    with open(path, "rb") as f:
        buf = bytearray(os.fstat(f.fileno()).st_size)
        if f.readinto(buf) != len(buf) or len(buf) < _PREFIX or buf[: len(_MAGIC)] != _MAGIC:
            raise ValueError(f"{path.name}: truncated or not a cache file")
    payload = memoryview(buf)[len(_MAGIC) + _DIGEST :]
    if hashlib.blake2b(payload, digest_size=_DIGEST).digest() != buf[len(_MAGIC) : _PREFIX - 8]:
        raise ValueError(f"{path.name}: checksum mismatch")
    size = int.from_bytes(buf[_PREFIX - 8 : _PREFIX], "little")
    header = json.loads(buf[_PREFIX : _PREFIX + size])
    return header, buf, _PREFIX + size + (-(_PREFIX + size) % _ALIGN)


def _encode(array: np.ndarray, out: _Buffers) -> dict[str, Any]:
    """Describe an array and queue its bytes: raw for fixed-size dtypes, text for objects."""
    if array.dtype.kind == "O":
        if array.ndim != 1:
            raise TypeError(f"object array of shape {array.shape}: only 1-D ones are cached")
        try:
            return {"strings": _encode_strings(array, out)}
        except TypeError:  # strings mixed with missing values or numbers: they fit in the header
            return {"plain": [_plain(v) for v in array.tolist()]}
    if array.dtype.kind == "V" or array.dtype.itemsize == 0:
        raise TypeError(f"arrays of dtype {array.dtype} are not cached")
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return {"dtype": array.dtype.str, "shape": list(array.shape), "at": out.add(flat)}


def _decode(spec: dict[str, Any], buf: bytearray, base: int) -> np.ndarray:
    if "strings" in spec or "plain" in spec:
        values = _decode_strings(spec["strings"], buf, base) if "strings" in spec else spec["plain"]
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    dtype, (offset, nbytes) = np.dtype(spec["dtype"]), spec["at"]
    if base + offset + nbytes > len(buf):
        raise ValueError("array beyond the end of the file")
    flat = np.frombuffer(buf, dtype=dtype, count=nbytes // dtype.itemsize, offset=base + offset) if nbytes else []
    return np.asarray(flat, dtype=dtype).reshape(spec["shape"])


def _encode_strings(values: Any, out: _Buffers) -> dict[str, Any]:
    """Strings as one UTF-8 text plus end positions; raises TypeError if one is not a str."""
    text = "".join(values)
    ends = np.cumsum(np.fromiter(map(len, values), dtype=np.int64, count=len(values)))
    # surrogatepass: names decoded with surrogateescape keep their lone surrogates exactly
    blob = np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8)
    return {"text": out.add(blob), "ends": _encode(ends, out)}


def _decode_strings(spec: dict[str, Any], buf: bytearray, base: int) -> list[str]:
    offset, nbytes = spec["text"]
    text = buf[base + offset : base + offset + nbytes].decode("utf-8", "surrogatepass")
    ends = _decode(spec["ends"], buf, base).tolist()
    if ends and ends[-1] != len(text):
        raise ValueError("string lengths do not match the text")
    return [text[start:end] for start, end in zip([0, *ends][:-1], ends, strict=True)]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(f"a value of type {type(value).__name__} is not cached")


def _trim(memo: dict[Any, Any]) -> None:
    while len(memo) > _MEMO:
        del memo[next(iter(memo))]
