"""Download and cache Ensembl GTFs (standard library only; tested against a local server)."""

from __future__ import annotations

import http.client
import logging
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .. import _open
from .._source import Source
from .._version import __version__
from ..errors import CorruptFileError, EmptyFileError, FormatError, InputError
from .gtf import _sniff

logger = logging.getLogger(__name__)

__all__ = ["fetch_ensembl_gtf"]


_SKIP_VARIANTS = (".chr.", ".abinitio.", ".chr_patch_hapl_scaff.")


def fetch_ensembl_gtf(
    species: str,
    release: int,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    base_url: str = "https://ftp.ensembl.org/pub",
) -> Path:
    """Download Ensembl's GTF of a species and release once, and return the cached file.

    The file is ``release-{release}/gtf/{species}/{Species}.{assembly}.{release}.gtf.gz``
    (all sequences, no ``.chr``/``.abinitio``/``.chr_patch_hapl_scaff`` variant); the
    assembly is read from the folder's listing. A cached file is returned without any
    request. A download goes to a temporary file that is checked (complete gzip, GTF
    lines) and only then renamed into place, so an interrupted one leaves nothing behind.

    Parameters
    ----------
    species
        Ensembl's species folder name, e.g. ``"homo_sapiens"`` (``"Homo sapiens"`` works).
    release
        Ensembl release number, e.g. ``110``.
    cache_dir
        Where files are kept (as ``release-N/species/file``); default ``~/.cache/gseio/gtf``
        (``$XDG_CACHE_HOME``, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows).
    base_url
        The server's ``pub`` folder (a mirror, or a local server in tests).

    Returns
    -------
    The path of the gzipped GTF; read it with :func:`gene_table`.

    Raises
    ------
    InputError
        The server has no such release or species (the message lists what it has), or it
        cannot be reached, or the download was cut short.
    FormatError
        The downloaded file is not a gzipped GTF, or the folder holds no single GTF.
    """
    species = species.strip().lower().replace(" ", "_")
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    folder = folder / f"release-{release}" / species
    cached = sorted(p for p in folder.glob("*.gtf.gz") if _is_main_gtf(p.name, species, release))
    if cached:
        return cached[0]
    url = f"{base_url.rstrip('/')}/release-{release}/gtf/{species}/"
    names = _listing(url, base_url.rstrip("/"), species, release)
    choices = [n for n in names if _is_main_gtf(n, species, release)]
    if len(choices) != 1:
        raise FormatError(
            f"expected one {species.capitalize()}.*.{release}.gtf.gz, found {choices or names}", path=url
        )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / choices[0]
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-", suffix=".gtf.gz")
    try:
        with os.fdopen(fd, "wb") as out:
            _download(url + choices[0], out)
        _check_gtf(Path(tmp), url + choices[0])
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    logger.info("downloaded %s to %s", url + choices[0], target)
    return target


def _is_main_gtf(name: str, species: str, release: int) -> bool:
    """``Homo_sapiens.GRCh38.111.gtf.gz``: the species' GTF of all sequences, no other variant."""
    wanted = name.startswith(f"{species.capitalize()}.") and name.endswith(f".{release}.gtf.gz")
    return wanted and "/" not in name and not any(v in name for v in _SKIP_VARIANTS)


def _default_cache_dir() -> Path:
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "gseio" / "Cache"
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Caches" / "gseio"
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gseio"
    return root / "gtf"


def _urlopen(url: str) -> Any:
    return urllib.request.urlopen(
        urllib.request.Request(url, headers={"User-Agent": f"gseio/{__version__}"}), timeout=60
    )


def _links(url: str, *, missing_ok: bool = False) -> list[str] | None:
    """The link targets of a folder listing page (``None`` for a missing folder with ``missing_ok``)."""
    try:
        with _urlopen(url) as response:
            page = response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as e:
        if e.code == 404 and missing_ok:
            return None
        raise InputError(f"the server answered {e.code} {e.reason}", path=url) from e
    except (urllib.error.URLError, OSError) as e:
        raise InputError(f"cannot reach the server: {e}", path=url) from e
    return [h.rstrip("/") for h in re.findall(r'href="([^"?/][^"?]*)"', page) if "://" not in h]


def _listing(url: str, base: str, species: str, release: int) -> list[str]:
    """The names in a species folder; for an unknown species or release, an error listing what there is."""
    names = _links(url, missing_ok=True)
    if names is not None:
        return names
    if (have := _links(f"{base}/release-{release}/gtf/", missing_ok=True)) is not None:
        raise InputError(f"release {release} has no species {species!r}; it has: {', '.join(have)}", path=url)
    releases = [n for n in _links(f"{base}/", missing_ok=True) or [] if re.fullmatch(r"release-\d+", n)]
    releases.sort(key=lambda n: int(n.split("-")[1]))
    raise InputError(
        f"the server has no release {release}; it has: {', '.join(releases) or '(none listed)'}", path=url
    )


def _download(url: str, out: Any) -> None:
    try:
        with _urlopen(url) as response:
            expected = response.headers.get("Content-Length")
            size = 0
            while chunk := response.read(1 << 20):
                out.write(chunk)
                size += len(chunk)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:  # IncompleteRead is the last
        raise InputError(f"the download failed or was cut short: {e!r}", path=url) from e
    if expected is not None and size != int(expected):
        raise InputError(f"the download was cut short ({size} of {expected} bytes)", path=url)


def _check_gtf(path: Path, url: str) -> None:
    """Keep only a complete gzip whose first data line is a GTF line."""
    if _open.detect_compression(path) != "gzip":
        raise FormatError("the downloaded file is not gzip", path=url)
    try:
        kind, _ = _sniff(_open.read_bytes(path, limit=1 << 16), Source.file(path))
        with _open.open_decompressed(path) as fh:  # read to the end: the gzip trailer proves completeness
            while fh.read(16 << 20):
                pass
    except (FormatError, EmptyFileError) as e:
        raise FormatError(f"the downloaded file is not a GTF: {e.reason}", path=url) from e
    except CorruptFileError as e:
        raise InputError(f"the downloaded file is corrupt or truncated: {e.reason}", path=url) from e
    except _open._GZIP_ERRORS as e:
        raise InputError(f"the downloaded file is corrupt or truncated: {e!r}", path=url) from e
    if kind != "gtf":
        raise FormatError("the downloaded file is not a GTF", path=url)
