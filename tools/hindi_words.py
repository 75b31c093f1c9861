r"""data/hindi_words.txt, the Hindi word list notebook 05 judges its generations with, from wordfreq's Hindi list.

  pip install wordfreq==3.1.1          (in any environment; the project does not depend on it)
  python -m tools.hindi_words          write data/hindi_words.txt
  python -m tools.hindi_words --check  exit 1 if the committed file differs from what wordfreq gives

wordfreq's "small" Hindi list (Wikipedia, subtitles, news, web text and more; not this project's text) holds 26,653
entries; the file keeps those written in Devanagari only (no digits, Latin letters or symbols), normalised the way
helpers.corpora.hindi_words normalises generated text, sorted, one per line. Its data is CC BY-SA 4.0
(wordfreq's README); data/README.md says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.corpora import DEVANAGARI_WORD, WORD_LIST, normalise_hindi

ROOT = Path(__file__).resolve().parents[1]

WORDFREQ_VERSION = "3.1.1"


def build() -> str:
    from importlib.metadata import version

    import wordfreq  # only this tool needs it

    if version("wordfreq") != WORDFREQ_VERSION:
        raise SystemExit(f"wordfreq {WORDFREQ_VERSION} wanted, found {version('wordfreq')}")
    words = {normalise_hindi(w) for w in wordfreq.iter_wordlist("hi", "small")}
    return "".join(f"{w}\n" for w in sorted(w for w in words if DEVANAGARI_WORD.fullmatch(w)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = build()
    if args.check:
        same = WORD_LIST.read_text(encoding="utf-8") == text
        verdict = "up to date" if same else "differs from wordfreq; run without --check"
        print(f"{WORD_LIST.relative_to(ROOT)}: {verdict}")
        return 0 if same else 1
    WORD_LIST.write_text(text, encoding="utf-8")
    print(f"wrote {WORD_LIST.relative_to(ROOT)}: {text.count(chr(10)):,} words")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
