"""Rebuild data/corpus/ from Debian packages (maintainers only; the result is committed).

Sources, both public domain or permissively licensed:
  * Jane Austen's six novels, from `r-cran-janeaustenr` (read through R's janeaustenr);
  * WordNet 3.0 example sentences, from `wordnet-base` (/usr/share/wordnet/data.*);
  * a few non-offensive collections of quotations and aphorisms from `fortunes` (Debian main).

    apt-get install -y wordnet-base fortunes
    apt-get install -y --no-install-recommends r-cran-janeaustenr
    python scripts/build_corpus.py

Writes data/corpus/corpus.jsonl.gz: one JSON object per document {"source", "text"}; Austen
documents are paragraphs, WordNet documents are example sentences of at least three words,
fortune documents are single items. Licence notices: data/corpus/LICENSES.md.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "data" / "corpus" / "corpus.jsonl.gz"
WORDNET_FILES = [f"/usr/share/wordnet/data.{pos}" for pos in ("noun", "verb", "adj", "adv")]
FORTUNE_FILES = [
    f"/usr/share/games/fortunes/{name}"
    for name in (
        "literature",
        "wisdom",
        "love",
        "humorists",
        "education",
        "food",
        "pets",
        "platitudes",
    )
]
R_DUMP = (
    "library(janeaustenr); b <- austen_books(); "
    "writeLines(paste(b$book, b$text, sep='\\t'), stdout())"
)


def austen_paragraphs() -> list[dict]:
    lines = subprocess.run(
        ["Rscript", "-e", R_DUMP], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    docs, current, book = [], [], None

    def flush():
        text = " ".join(" ".join(current).split())
        if len(text.split()) >= 3 and not text.isupper():  # skip headings like "CHAPTER 1"
            docs.append({"source": f"austen/{book}", "text": text.replace("_", "")})
        current.clear()

    for line in lines:
        name, _, text = line.partition("\t")
        if name != book:
            flush()
            book = name
        if text.strip():
            current.append(text.strip())
        else:
            flush()
    flush()
    return docs


def wordnet_examples() -> list[dict]:
    quoted = re.compile(r'"([^"]+)"')
    seen, docs = set(), []
    for path in WORDNET_FILES:
        for line in Path(path).read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # licence header
            for example in quoted.findall(line.split("|", 1)[1]):
                text = " ".join(example.split())
                if len(text.split()) >= 3 and text not in seen:
                    seen.add(text)
                    docs.append({"source": "wordnet", "text": text})
    return docs


def fortune_items() -> list[dict]:
    docs = []
    for path in FORTUNE_FILES:
        for item in Path(path).read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            text = " ".join(item.replace("%", " ").split())
            if len(text.split()) >= 3:
                docs.append({"source": f"fortunes/{Path(path).name}", "text": text})
    return docs


def main() -> None:
    docs = austen_paragraphs() + wordnet_examples() + fortune_items()
    words = sum(len(d["text"].split()) for d in docs)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(OUT, "wb", mtime=0) as raw:  # mtime=0: byte-identical rebuilds
        for doc in docs:
            raw.write((json.dumps(doc, ensure_ascii=False) + "\n").encode())
    print(f"{OUT}: {len(docs)} documents, {words} words", file=sys.stderr)


if __name__ == "__main__":
    main()
