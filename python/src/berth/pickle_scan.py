"""Pickle is code: check a pickle or joblib file without executing it.

The check runs the file through Python's own pickle machine (the pure-Python
`pickle._Unpickler`), but every global the file names resolves to an inert
placeholder: nothing the file names is imported or called, so a `__reduce__`
that would run `os.system` runs nothing. This resolves STACK_GLOBAL through the
memo exactly as a real load would (an opcode walk that guesses at the strings
can be fooled), and it follows joblib's layout, where the bytes of each numpy
array sit in the stream right after its wrapper. Each global is then checked
against an allow-list of what a model file may reference (skops' approach:
block lists miss what they do not know, picklescan#66, modelscan#330).
fickling reads the same opcodes as a second opinion (joblib's array bytes
taken out of the stream, which fickling would read as opcodes).
"""

from __future__ import annotations

import _compat_pickle
import importlib
import io
import pickle
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Final

import numpy as np

from berth.errors import BerthError

# Globals allowed by exact name: containers and the helpers numpy, copyreg and
# joblib pickle through. Nothing here reads files, runs commands or evaluates.
_ALLOWED_EXACT: Final = frozenset(
    [
        *(f"builtins.{n}" for n in (
            "slice", "set", "frozenset", "complex", "bytearray", "bytes", "dict", "list",
            "tuple", "int", "float", "str", "bool", "range", "object",
        )),
        "copyreg._reconstructor", "copyreg.__newobj__", "_codecs.encode",
        "collections.OrderedDict", "collections.defaultdict", "collections.deque",
        "collections.Counter", "functools.partial",
        "numpy.ndarray", "numpy.dtype", "numpy.ma.core._mareconstruct", "numpy.ma.core.MaskedArray",
        *(f"numpy.{core}.{fn}" for core in ("core.multiarray", "_core.multiarray")
          for fn in ("_reconstruct", "scalar")),
        "numpy.core.numeric._frombuffer", "numpy._core.numeric._frombuffer",
        "numpy.random._pickle.__randomstate_ctor", "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor", "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random.mtrand.RandomState", "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64", "numpy.random._generator.Generator",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        # The boosters' model classes only: their packages also hold classes that
        # open sockets or files when constructed (xgboost's RabitTracker).
        *(f"xgboost.sklearn.{c}" for c in (
            "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor",
        )),
        "xgboost.core.Booster",
        *(f"lightgbm.sklearn.{c}" for c in ("LGBMClassifier", "LGBMRegressor", "LGBMRanker")),
        "lightgbm.basic.Booster",
    ]
)  # fmt: skip

# Packages whose *classes* a model file may name (constructing an estimator
# stores its parameters; its fitted state arrives through __setstate__).
_CLASS_PACKAGES: Final = ("sklearn", "scipy.sparse", "numpy.dtypes", "imblearn")
# Submodules of those packages that read files or the network: never allowed.
_DENIED_PREFIXES: Final = ("sklearn.datasets", "sklearn.utils._testing", "sklearn.externals")

# Cython extension types that pickle under their bare module name.
_CYTHON_MODULES: Final = {"_loss": "sklearn._loss._loss"}

JOBLIB_WRAPPER: Final = "joblib.numpy_pickle.NumpyArrayWrapper"


@dataclass
class ScanResult:
    """What a file references, and what of it is outside the allow-list.

    `to_metadata()` gives the `scan` object stored with the version.
    """

    globals: list[str] = field(default_factory=list)
    disallowed: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # stored, never a reason to refuse
    scanner: str = "berth-allowlist+fickling"
    trusted: bool = False
    joblib: bool = False  # joblib's layout (arrays written after their wrappers) or compressed

    @property
    def safe(self) -> bool:
        return not self.disallowed and not self.findings

    def to_metadata(self) -> dict[str, Any]:
        return {
            "scanner": self.scanner,
            "globals": sorted(set(self.globals)),
            "trusted": self.trusted,
            "findings": [
                *(f"global outside the allow-list: {g}" for g in self.disallowed),
                *self.findings,
                *self.notes,
            ],
        }


def is_allowed(qualified: str) -> bool:
    """Whether a pickle may name `qualified` ("module.name")."""
    if qualified in _ALLOWED_EXACT:
        return True
    module, _, name = qualified.rpartition(".")
    if not module or not name.isidentifier():
        return False
    if module == "numpy":
        value = getattr(np, name, None)
        return isinstance(value, np.ufunc) or (isinstance(value, type) and issubclass(value, np.generic))
    if module in _CYTHON_MODULES:
        module = _CYTHON_MODULES[module]
    if any(module == p or module.startswith(p + ".") for p in _DENIED_PREFIXES):
        return False
    if not any(module == p or module.startswith(p + ".") for p in _CLASS_PACKAGES):
        return False
    # Importing a module of an allowed package runs that package's own,
    # installed code (never the file's); the name must then be a class.
    try:
        value = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(value, type)


class _Global:
    """An inert stand-in for a global: calling it records the call and returns an _Object."""

    def __init__(self, qualified: str) -> None:
        self.qualified = qualified

    def __call__(self, *args: Any, **kwargs: Any) -> _Object:
        return _Object(self, args)


class _Object:
    """An inert stand-in for whatever a global would have built."""

    def __init__(self, origin: _Global | None, args: tuple[Any, ...] = ()) -> None:
        self.origin = origin
        self.args = args
        self.state: Any = None
        self.items: list[Any] = []

    def append(self, item: Any) -> None:
        self.items.append(item)

    def extend(self, items: Any) -> None:
        self.items.extend(items)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.items.append((key, value))

    def add(self, item: Any) -> None:
        self.items.append(item)


def _dtype_size(dtype: Any) -> tuple[int, bool]:
    """(itemsize, holds Python objects) of a dtype as a joblib wrapper's state carries it."""
    if isinstance(dtype, _Object) and dtype.origin is not None and dtype.origin.qualified == "numpy.dtype":
        spec = dtype.args[0] if dtype.args else None
        state = dtype.state if isinstance(dtype.state, tuple) else ()
        if isinstance(spec, str):
            try:
                base = np.dtype(spec)
            except TypeError as e:
                raise BerthError(f"a joblib array has an unreadable dtype {spec!r}") from e
            elsize = state[5] if len(state) > 5 and isinstance(state[5], int) and state[5] > 0 else base.itemsize
            flags = state[7] if len(state) > 7 and isinstance(state[7], int) else 0
            return int(elsize), base.hasobject or bool(flags & 1)
    raise BerthError("a joblib array wrapper without a readable dtype: not a file joblib wrote")


class _Recorder:
    """The stream a scan reads, keeping each pickle's opcode bytes apart from joblib's raw array bytes.

    joblib writes each numpy array's bytes right after its NumpyArrayWrapper
    (outside any pickle frame), and an object array as a whole pickle of its
    own there. The scan reads the arrays' bytes with `_unrecorded_read`, so
    what is recorded is the opcode stream of the outer pickle, valid without
    them, and one stream per nested pickle: a second scanner can read each
    (it could not read the file as written: it takes the array bytes for
    opcodes).
    """

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._open: list[bytearray] = [bytearray()]
        self._nested: list[bytes] = []

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._open[-1] += data
        return data

    def readline(self) -> bytes:
        data = self._raw.readline()
        self._open[-1] += data
        return data

    def read_unrecorded(self, size: int) -> bytes:
        return self._raw.read(size)

    def begin_pickle(self) -> None:
        self._open.append(bytearray())

    def end_pickle(self) -> None:
        self._nested.append(bytes(self._open.pop()))

    def pickles(self) -> list[bytes]:
        """The outer pickle's opcodes, then each nested pickle's, in the order they ended."""
        return [bytes(self._open[0]), *self._nested]


def _unrecorded_read(file: IO[bytes] | _Recorder, size: int) -> bytes:
    return file.read_unrecorded(size) if isinstance(file, _Recorder) else file.read(size)


class _ScanUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """pickle's own machine with every global made inert (see the module's docstring)."""

    # What pickle._Unpickler (untyped) gives its subclasses.
    stack: list[Any]
    proto: int
    append: Callable[[Any], None]
    dispatch: ClassVar[dict[int, Callable[[Any], None]]] = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, file: IO[bytes] | _Recorder, found: list[str], depth: int = 0) -> None:
        super().__init__(file)
        self._file = file  # pickle keeps only the file's read methods; joblib's skip needs the file
        self._found = found
        self._depth = depth

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3:  # Python 2 names, mapped as pickle maps them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        qualified = f"{module}.{name}"
        self._found.append(qualified)
        return _Global(qualified)

    def persistent_load(self, pid: Any) -> Any:
        raise BerthError(f"the pickle asks for a persistent object ({str(pid)[:80]}): not a model file Berth reads")

    def _load_newobj(self) -> None:
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(_Object(cls if isinstance(cls, _Global) else None, tuple(args)))

    def _load_newobj_ex(self) -> None:
        self.stack.pop()
        args = self.stack.pop()
        cls = self.stack.pop()
        self.append(_Object(cls if isinstance(cls, _Global) else None, tuple(args)))

    def _load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, _Object):
            return
        inst.state = state
        if inst.origin is not None and inst.origin.qualified == JOBLIB_WRAPPER:
            self.stack[-1] = self._skip_joblib_array(state)

    def _skip_joblib_array(self, state: Any) -> _Object:
        """Step over the array bytes joblib writes right after a NumpyArrayWrapper."""
        if not isinstance(state, dict) or not isinstance(state.get("shape"), tuple):
            raise BerthError("a joblib array wrapper without a shape: not a file joblib wrote")
        count = 1
        for dim in state["shape"]:
            if not isinstance(dim, int) or dim < 0:
                raise BerthError("a joblib array with a malformed shape")
            count *= dim
        itemsize, has_objects = _dtype_size(state.get("dtype"))
        if has_objects:
            if self._depth > 8:
                raise BerthError("joblib object arrays nested too deeply")
            if isinstance(self._file, _Recorder):
                self._file.begin_pickle()
            _ScanUnpickler(self._file, self._found, self._depth + 1).load()
            if isinstance(self._file, _Recorder):
                self._file.end_pickle()
        else:
            if state.get("numpy_array_alignment_bytes") is not None:
                padding = _unrecorded_read(self._file, 1)
                if len(padding) != 1:
                    raise BerthError("a joblib array ends early")
                self._skip(padding[0])
            self._skip(count * itemsize)
        return _Object(None)

    def _skip(self, size: int) -> None:
        while size > 0:
            chunk = _unrecorded_read(self._file, min(size, 1 << 24))
            if not chunk:
                raise BerthError("a joblib array ends early: the file is truncated")
            size -= len(chunk)

    dispatch[pickle.NEWOBJ[0]] = _load_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _load_newobj_ex
    dispatch[pickle.BUILD[0]] = _load_build


class _ArchiveUnpickler(_ScanUnpickler):
    """torch.save's data.pkl: each tensor's storage is a persistent id naming a file beside the pickle."""

    def persistent_load(self, pid: Any) -> Any:
        return _Object(None)


def scan_globals(stream: IO[bytes] | _Recorder, *, persistent_ids: bool = False) -> list[str]:
    """Every global the pickle in `stream` names, in order, without executing any of them."""
    found: list[str] = []
    unpickler = (_ArchiveUnpickler if persistent_ids else _ScanUnpickler)(stream, found)
    try:
        unpickler.load()
    except BerthError:
        raise
    # The placeholders run none of the file's code: any error is a malformed file.
    except Exception as e:
        raise BerthError(f"not a model file: it does not read as a pickle ({type(e).__name__}: {e})") from e
    return found


def _vetted_import(trigger: Any) -> bool:
    """Whether fickling's `trigger` ("from M import N") names a global the allow-list names exactly.

    fickling flags any module path with a component such as `joblib` or
    `_pickle` (joblib.load and pickle.loads unpickle what they are given), so
    it flags joblib's array wrapper, which every array is pickled with (it
    reads only the bytes that follow it in this stream, which the scan steps
    over), and numpy's RandomState constructors in numpy.random._pickle. Those
    are vetted one by one in _ALLOWED_EXACT; anything else fickling flags
    still refuses.
    """
    module, sep, name = str(trigger or "").removeprefix("from ").partition(" import ")
    return bool(sep) and f"{module}.{name}" in _ALLOWED_EXACT


def _bytes_for_bytearrays(data: bytes) -> bytes:
    """`data` with each BYTEARRAY8 opcode written as BINBYTES8, which fickling reads.

    Protocol 5 pickles numpy arrays in band as BYTEARRAY8 (joblib's nested
    object arrays do); fickling has no support for that opcode. The two share
    their argument's layout and differ only in the mutability of what they
    push, which no safety finding depends on. Unchanged if it does not parse.
    """
    import pickletools

    marker = pickle.BYTEARRAY8[0]
    if marker not in data:
        return data
    out = bytearray(data)
    try:
        for opcode, _, position in pickletools.genops(data):
            if opcode.code == "\x96" and position is not None:
                out[position] = pickle.BINBYTES8[0]
    except Exception:  # noqa: BLE001 - fickling reports what it cannot read
        return data
    return bytes(out)


def fickling_findings(data: bytes) -> tuple[list[str], list[str]]:
    """(findings, notes): fickling's overtly malicious findings (its LIKELY_UNSAFE flags every
    non-stdlib import, so it is not a reason to refuse), and why it gave no opinion, if it did not."""
    try:
        from fickling.analysis import Severity, check_safety
        from fickling.fickle import Pickled
    except ImportError:
        return [], ["fickling is not installed: the allow-list alone decided"]
    try:
        results = check_safety(Pickled.load(_bytes_for_bytearrays(data)))
    except Exception as e:  # noqa: BLE001 - fickling's parse errors: the allow-list has decided already
        return [], [f"fickling could not read the file ({type(e).__name__}): the allow-list alone decided"]
    return [
        f"fickling: {r}"
        for r in results.results
        if r.severity is not None
        and r.severity >= Severity.LIKELY_OVERTLY_MALICIOUS
        and not _vetted_import(getattr(r, "trigger", None))
    ], []


def is_pickle_like(head: bytes) -> bool:
    """Whether the first bytes look like a pickle (protocol 2+) or a compressed joblib file."""
    return (
        head[:1] == b"\x80"
        or head[:2] in (b"\x1f\x8b", b"BZ")
        or head[:1] in (b"x", b"]")
        or (head[:6] == b"\xfd7zXZ\x00")
    )


def scan_bytes(data: bytes, path: Path) -> ScanResult:
    """Check the pickle or joblib file `data` (read from `path`) without executing it."""
    from joblib.numpy_pickle_utils import _validate_fileobject_and_memmap

    result = ScanResult()
    try:
        with _validate_fileobject_and_memmap(io.BytesIO(data), str(path)) as (stream, _):
            if isinstance(stream, str):
                raise BerthError(f"{path} was written by joblib older than 0.10, which Berth does not read")
            recorder = _Recorder(stream)
            result.globals = scan_globals(recorder)
            result.joblib = JOBLIB_WRAPPER in result.globals or data[:1] != b"\x80"
    except BerthError:
        raise
    except Exception as e:  # a compressed stream that does not decompress (zlib, lzma, ...)
        raise BerthError(f"not a model file: it does not decompress ({type(e).__name__}: {e})") from e
    # fickling reads opcodes only: it gets the decompressed pickles without joblib's array bytes.
    for opcodes in recorder.pickles():
        findings, notes = fickling_findings(opcodes)
        result.findings += findings
        result.notes += [n for n in notes if n not in result.notes]
    if result.notes:
        result.scanner = "berth-allowlist"  # fickling gave no opinion; the notes say why
    result.disallowed = sorted({g for g in result.globals if not is_allowed(g)})
    return result


def scan_torch_archive(data: bytes, path: Path) -> ScanResult:
    """Check every pickle inside a torch.save zip archive (its data.pkl) without executing it."""
    import zipfile

    result = ScanResult()
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [n for n in archive.namelist() if n.endswith(".pkl")]
            if not members:
                raise BerthError(f"not a model file: the archive {path} holds no pickle")
            for name in members:
                pickled = archive.read(name)
                result.globals += scan_globals(io.BytesIO(pickled), persistent_ids=True)
                findings, notes = fickling_findings(pickled)
                result.findings += findings
                result.notes += notes
    except zipfile.BadZipFile as e:
        raise BerthError(f"not a model file: {path} is not a zip archive ({e})") from e
    result.scanner = "berth-allowlist+fickling (torch archive)"
    result.disallowed = sorted({g for g in result.globals if not is_allowed(g)})
    return result


def refuse_unless_trusted(result: ScanResult, path: Path, trust: bool) -> None:
    """Raise naming the offending globals, unless `trust`; either way the result says what was decided."""
    result.trusted = trust
    if result.safe or trust:
        return
    reasons = [f"it references {g}, which is outside the allow-list" for g in result.disallowed]
    reasons += result.findings
    raise BerthError(
        f"refusing to load {path}: loading a pickle runs code, and "
        + "; ".join(reasons)
        + ". Nothing was loaded. If you wrote this file yourself and trust it, pass --trust."
    )
