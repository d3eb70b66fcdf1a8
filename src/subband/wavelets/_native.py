"""The 2-D transform on CPU as a small C library (``_dwt2d.c``), built on first use with the
system's C compiler and cached; without one, the PyTorch passes of :mod:`._haar` and :mod:`._core`
do the same work.

Haar: one pass over the data each way where the PyTorch passes take two, and several levels in that
one pass (each level's approximation is consumed while in cache): the analysis writes each band
into a tensor of its own (for :mod:`._haar`'s one-level passes, one band-major ``(B, 4, n1, n2)``
tensor), the synthesis reads bands of any strides. Any other pair of filters: one level in one pass
each way (``bank_analysis2``, ``bank_synthesis2``; in 1-D ``bank_analysis1``, ``bank_synthesis1``)
over an input that holds its boundary extension, where the PyTorch passes take one per filter tap
and axis. Built with OpenMP, linked against the runtime already loaded with PyTorch, so both share
one pool of threads (as many as ``torch.get_num_threads()``).

- ``SUBBAND_NATIVE=0`` turns it off; ``CC`` picks the compiler (else ``cc``, ``gcc``, ``clang``).
- The library is cached in ``$SUBBAND_CACHE_DIR``, else ``$XDG_CACHE_HOME/subband``, else
  ``~/.cache/subband``, under a name that hashes the source and the build command. A new build
  removes those made more than 30 days before it (of other versions: the directory can be deleted).
- :func:`status` says which library is loaded, or why none is.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

_SOURCE = Path(__file__).with_name("_dwt2d.c")
_FLAGS = ["-O3", "-std=gnu11", "-fPIC", "-ffp-contract=off"]  # no fused multiply-add: one rounding on every CPU
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_lib: ctypes.CDLL | None = None
_status = ""


def _compiler() -> str | None:
    for name in (os.environ.get("CC", "").split() or [None])[:1] + ["cc", "gcc", "clang"]:
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _openmp_runtime() -> str | None:
    """The OpenMP runtime loaded with PyTorch (GNU's, on Linux), to link against."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line}
    except OSError:
        return None
    return min(paths) if paths else None


def _cache_dir() -> Path:
    if os.environ.get("SUBBAND_CACHE_DIR"):
        return Path(os.environ["SUBBAND_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "subband"


def _commands(cc: str, obj: str, out: str) -> list[list[list[str]]]:
    """Build commands to try in turn: with OpenMP (PyTorch's runtime, else the compiler's), then
    without."""
    source, gomp = str(_SOURCE), _openmp_runtime()
    options = []
    if gomp:  # compile with OpenMP, link PyTorch's runtime rather than the compiler's own
        options.append([[cc, *_FLAGS, "-fopenmp", "-c", source, "-o", obj], [cc, "-shared", obj, gomp, "-o", out]])
    options.append([[cc, *_FLAGS, "-fopenmp", "-shared", source, "-o", out]])
    options.append([[cc, *_FLAGS, "-shared", source, "-o", out]])
    return options


def _build() -> ctypes.CDLL:
    """Load the cached library, building it first if needed; raises with the reason it cannot."""
    cc = _compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set CC)")
    source = _SOURCE.read_bytes()
    cache = _cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    for steps in _commands(cc, "{obj}", "{out}"):
        key = hashlib.sha256(repr((source, steps, platform.machine(), sys.platform)).encode()).hexdigest()[:16]
        path, failed = cache / f"dwt2d-{key}.so", cache / f"dwt2d-{key}.failed"
        if path.exists():
            return _load(path)
        if failed.exists():  # this build failed before: do not retry it in every process
            continue
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            obj, out = str(Path(tmp) / "dwt2d.o"), str(Path(tmp) / "dwt2d.so")
            runs = (
                subprocess.run([c.format(obj=obj, out=out) for c in cmd], capture_output=True, timeout=300)
                for cmd in steps
            )
            if all(run.returncode == 0 for run in runs):  # stops at the first failure
                os.replace(out, path)  # atomic: other processes see the whole file or none
                _prune(cache)
                return _load(path)
        failed.touch()
    raise RuntimeError(f"{cc} could not build {_SOURCE.name}")


def _prune(cache: Path, days: float = 30) -> None:
    """Remove the builds (and failure records) made more than ``days`` ago, of earlier sources or
    build commands: a process that still wants one builds it again."""
    cutoff = time.time() - days * 86400
    for p in [*cache.glob("dwt2d-*"), *cache.glob("haar2d-*")]:  # haar2d-: the library's earlier name
        try:
            if p.stat().st_mtime < cutoff:
                p.unlink()
        except OSError:  # removed meanwhile by another process, or not ours to remove
            pass


def _load(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    p, n, i = ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    for suffix in _SUFFIX.values():
        f = getattr(lib, f"subband_haar2_wavedec_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, n, i, p, p, i, p, i], None
        f = getattr(lib, f"subband_haar2_waverec_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, n, i, p, i, p, i, i], None
        f = getattr(lib, f"subband_bank2_down_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, n, p, i, p, n, p, i], None
        f = getattr(lib, f"subband_bank2_up_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, n, p, i, p, p, i], None
        f = getattr(lib, f"subband_bank1_down_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, p, i, p, n, p, i], None
        f = getattr(lib, f"subband_bank1_up_{suffix}")
        f.argtypes, f.restype = [p, p, n, n, p, i, p, p, i], None
    return lib


def library() -> ctypes.CDLL | None:
    """The loaded library, or None (see :func:`status`); built on the first call."""
    global _lib, _status
    if _status:
        return _lib
    if os.environ.get("SUBBAND_NATIVE", "1").strip().lower() in ("0", "false", "no", "off"):
        _status = "off (SUBBAND_NATIVE=0)"
        return None
    try:
        _lib = _build()
        _status = f"loaded {Path(_lib._name).name}"
    except (OSError, RuntimeError, subprocess.SubprocessError) as e:
        _status = f"unavailable: {e}"
    return _lib


def status() -> str:
    """Which library the 2-D transforms use on CPU, or why they use PyTorch's passes."""
    library()
    return _status


def _flat(t: torch.Tensor) -> tuple[int, int, int, int] | None:
    """``t (*lead, H, W)`` as ``(B, batch stride, row stride, column stride)`` with B the product of
    the leading sizes, or None when they do not flatten to one stride."""
    *lead, _, _ = t.shape
    strides = t.stride()
    batch, step = 1, 0
    for n, s in zip(reversed(lead), reversed(strides[:-2])):  # innermost first
        if n == 1:
            continue
        if batch == 1:
            step = s
        elif s != step * batch:
            return None
        batch *= n
    return batch, step, strides[-2], strides[-1]


def usable(*ts: torch.Tensor) -> bool:
    """Whether the library can transform these tensors: ``(*lead, H, W)`` strided CPU tensors of
    one dtype, float32 or float64, and the library is built. (Callers check that the shapes fit
    together.)"""
    t = ts[0]
    if t.device.type != "cpu" or t.dtype not in _SUFFIX:
        return False
    if any(u.ndim < 2 or u.dtype != t.dtype or u.device != t.device or u.layout != torch.strided for u in ts):
        return False
    return library() is not None


def _flattened(t: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """``t`` and its :func:`_flat` form; a contiguous copy where the leading axes do not flatten to
    one stride, zeros in memory for an autograd zero tensor (which holds none)."""
    if t._is_zerotensor():
        t = torch.zeros(t.shape, dtype=t.dtype)
    flat = _flat(t)
    if flat is None:
        t = t.contiguous()
        flat = _flat(t)
    return t, flat


def _threads(numel: int) -> int:
    return torch.get_num_threads() if numel >= 1 << 15 else 1


@functools.cache
def _cache_bytes() -> int:
    """The size of the last-level CPU cache, from Linux's sysfs; 0 where unknown (read once, at the
    first synthesis rather than at import)."""
    size = 0
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        try:
            text = path.read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
        digits = text.rstrip("KMG")
        if digits.isdigit():
            size = max(size, int(digits) * scale)
    return size


def _streaming_threshold(threads: int) -> float:
    """Output bytes from which the synthesis writes past the cache: three quarters of each thread's
    share of the last-level cache, the rule glibc's memcpy uses for its streaming stores (never
    where the cache size is unknown). On 2 threads and 32 MB, from 12 MiB: a forward+inverse of a
    16x3x256x256 float32 batch took 1.39x two copies' time with them, 1.59x without; of an 8x3x..
    batch, which stays in cache, 2.15x with them and 1.76x without."""
    size = _cache_bytes()
    return 0.75 * size / max(threads, 1) if size else math.inf


def _kernel(name: str, dtype: torch.dtype) -> Callable[..., None]:
    """The library's function ``name`` for elements of ``dtype``."""
    return getattr(library(), f"{name}_{_SUFFIX[dtype]}")


def _analyse(x: torch.Tensor, h: int, levels: int, bands: Sequence[Sequence[torch.Tensor | None]]) -> None:
    """Write the analysis of ``x (*lead, H, W)`` (:func:`usable`; H and W divisible by
    ``2**levels``) into ``bands``: for each level j = 1 .. levels, LL, LH, HL, HH ``(*lead, H >> j,
    W >> j)`` with contiguous rows and one batch stride per level (LL None but at the last)."""
    x, (B, *xs) = _flattened(x)
    H, W = x.shape[-2:]
    if not x.numel():
        return
    threads = _threads(x.numel())
    scratch = x.new_empty(threads, 2 * W) if levels > 1 else x.new_empty(0)
    pointers = (ctypes.c_void_p * (4 * levels))(*(0 if b is None else b.data_ptr() for level in bands for b in level))
    steps = (ctypes.c_int64 * levels)(*(_flat(level[1])[1] for level in bands))
    f = _kernel("subband_haar2_wavedec", x.dtype)
    f(x.data_ptr(), (ctypes.c_int64 * 3)(*xs), B, H, W, levels, pointers, steps, h, scratch.data_ptr(), threads)


def wavedec(x: torch.Tensor, h: int, levels: int = 1) -> list[torch.Tensor]:
    """``x (*lead, H, W)`` (:func:`usable`), H and W divisible by ``2**levels`` -> the bands ``[LH_1,
    HL_1, HH_1, .., LH_J, HL_J, HH_J, LL_J]``, level j's ``(*lead, H >> j, W >> j)``, each in its own
    contiguous tensor."""
    *lead, H, W = x.shape
    out = [x.new_empty(*lead, H >> j, W >> j) for j in range(1, levels + 1) for _ in range(3)]
    out.append(x.new_empty(*lead, H >> levels, W >> levels))
    _analyse(x, h, levels, [[out[-1] if j == levels - 1 else None, *out[3 * j : 3 * j + 3]] for j in range(levels)])
    return out


def waverec(levels: Sequence[Sequence[torch.Tensor | None]], h: int) -> torch.Tensor:
    """The inverse of :func:`wavedec`: for each level j = 1 .. J, the bands LL, LH, HL, HH
    ``(*lead, H >> j, W >> j)`` (:func:`usable`; LL unused, may be None, but at the last) ->
    ``(*lead, H, W)``, contiguous."""
    *lead, n1, n2 = levels[0][1].shape
    J = len(levels)
    x = levels[0][1].new_empty(*lead, 2 * n1, 2 * n2)
    if x.numel():
        threads = _threads(x.numel())
        scratch = x.new_empty(threads, 4 * n2) if J > 1 else x.new_empty(0)
        bands = [None if b is None else _flattened(b) for level in levels for b in level]
        pointers = (ctypes.c_void_p * len(bands))(*(0 if b is None else b[0].data_ptr() for b in bands))
        strides = (ctypes.c_int64 * (3 * len(bands)))(*(s for b in bands for s in (b[1][1:] if b else (0, 0, 0))))
        f = _kernel("subband_haar2_waverec", x.dtype)
        stream = x.nbytes >= _streaming_threshold(threads)
        f(pointers, strides, math.prod(lead), 2 * n1, 2 * n2, J, x.data_ptr(), h, scratch.data_ptr(), threads, stream)
    return x


def analysis(x: torch.Tensor, h: int) -> torch.Tensor:
    """``x (B, 2 n1, 2 n2)`` -> the bands LL, LH, HL, HH as one ``(B, 4, n1, n2)`` tensor."""
    B, H, W = x.shape
    y = x.new_empty(B, 4, H // 2, W // 2)
    _analyse(x, h, 1, [y.unbind(1)])
    return y


def synthesis(bands: Sequence[torch.Tensor], h: int) -> torch.Tensor:
    """The four bands ``(B, n1, n2)`` (any strides) -> ``(B, 2 n1, 2 n2)``, contiguous."""
    return waverec([bands], h)


# Any pair of filters, one level (``_dwt2d.c``'s bank2 kernels), on inputs that hold their boundary
# extension already.


def bank_analysis2(x: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``x (*lead, Hp, Wp)``, extended, and ``filters (2, F)`` (:func:`usable`; Hp, Wp >= F) -> the
    four bands ``(*lead, m, n)``, m = (Hp - F) // 2 + 1: the stride-2 correlation with the outer
    products of the filters, band ``2 bh + bw`` taking filter ``bh`` along the rows' axis."""
    x, (B, *xs) = _flattened(x)
    *lead, Hp, Wp = x.shape
    L = filters.shape[1] // 2
    m, n = (Hp - 2 * L) // 2 + 1, (Wp - 2 * L) // 2 + 1
    y = x.new_empty(4, *lead, m, n)
    if y.numel():
        threads = _threads(x.numel())
        f = filters.contiguous()
        scratch = x.new_empty(threads, 4 * (Wp // 2))
        pointers = (ctypes.c_void_p * 4)(*(band.data_ptr() for band in y))
        lib, strides = _kernel("subband_bank2_down", x.dtype), (ctypes.c_int64 * 3)(*xs)
        lib(x.data_ptr(), strides, B, Hp, Wp, f.data_ptr(), L, pointers, m * n, scratch.data_ptr(), threads)
    return tuple(y.unbind(0))


def bank_synthesis2(bands: Sequence[torch.Tensor], taps: torch.Tensor) -> torch.Tensor:
    """The four bands ``(*lead, M, N)``, extended, any strides, and the polyphase synthesis taps
    ``(2 phases, 2 bands, L)`` (:func:`usable`; M, N >= L) -> ``(*lead, 2m, 2n)``, m = M - L + 1,
    contiguous: ``x[2i + p][2j + q] = sum taps[p, bh, k] taps[q, bw, l] c[2 bh + bw][i + k][j + l]``."""
    *lead, M, N = bands[0].shape
    L = taps.shape[2]
    m, n = M - L + 1, N - L + 1
    x = bands[0].new_empty(*lead, 2 * m, 2 * n)
    if x.numel():
        threads = _threads(x.numel())
        flat = [_flattened(b) for b in bands]
        h = taps.contiguous()
        scratch = x.new_empty(threads, 4 * N)
        pointers = (ctypes.c_void_p * 4)(*(b.data_ptr() for b, _ in flat))
        strides = (ctypes.c_int64 * 12)(*(s for _, f in flat for s in f[1:]))
        lib = _kernel("subband_bank2_up", x.dtype)
        lib(pointers, strides, math.prod(lead), M, N, h.data_ptr(), L, x.data_ptr(), scratch.data_ptr(), threads)
    return x


def bank_analysis1(x: torch.Tensor, filters: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``x (B, Np)``, extended, and ``filters (2, F)`` (:func:`usable`; Np >= F) -> the two bands
    ``(B, n)``, n = (Np - F) // 2 + 1: the stride-2 correlation with each filter."""
    x, (_, _, *xs) = _flattened(x)
    B, Np = x.shape
    L = filters.shape[1] // 2
    n = (Np - 2 * L) // 2 + 1
    y = x.new_empty(2, B, n)
    if y.numel():
        threads = _threads(x.numel())
        f = filters.contiguous()
        scratch = x.new_empty(threads, 2 * (Np // 2))
        pointers = (ctypes.c_void_p * 2)(*(band.data_ptr() for band in y))
        lib, strides = _kernel("subband_bank1_down", x.dtype), (ctypes.c_int64 * 2)(*xs)
        lib(x.data_ptr(), strides, B, Np, f.data_ptr(), L, pointers, n, scratch.data_ptr(), threads)
    return y[0], y[1]


def bank_synthesis1(bands: Sequence[torch.Tensor], taps: torch.Tensor) -> torch.Tensor:
    """The two bands ``(B, M)``, extended, any strides, and the polyphase synthesis taps ``(2
    phases, 2 bands, L)`` (:func:`usable`; M >= L) -> ``(B, 2n)``, n = M - L + 1, contiguous:
    ``x[2j + p] = sum taps[p, b, k] c[b][j + k]``."""
    B, M = bands[0].shape
    L = taps.shape[2]
    x = bands[0].new_empty(B, 2 * (M - L + 1))
    if x.numel():
        threads = _threads(x.numel())
        flat = [_flattened(b) for b in bands]
        h = taps.contiguous()
        scratch = x.new_empty(threads, 2 * M)
        pointers = (ctypes.c_void_p * 2)(*(b.data_ptr() for b, _ in flat))
        strides = (ctypes.c_int64 * 4)(*(s for _, f in flat for s in f[2:]))
        lib = _kernel("subband_bank1_up", x.dtype)
        lib(pointers, strides, B, M, h.data_ptr(), L, x.data_ptr(), scratch.data_ptr(), threads)
    return x
