"""Prompts, grammars and few-shot examples are data: files of the `rag.templates` package (the
repository's prompts/ folder), read with importlib.resources so an installed wheel finds them too,
and rendered with Jinja2 that fails on a missing variable.

Each answer mode names its files in a `TemplateSet`; a missing file is an error at load time,
never a silent fallback (a wheel built without prompts/ once failed only at the first answer).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from rag.errors import TemplateError

PACKAGE = "rag.templates"


class _Loader(jinja2.BaseLoader):
    """Templates from a folder (a user's override) or from the package."""

    def __init__(self, root):
        self.root = root

    def get_source(self, environment, template):
        path = self.root.joinpath(template)
        if not path.is_file():
            raise jinja2.TemplateNotFound(template)
        return path.read_text("utf-8"), str(path), lambda: True


class Templates:
    """The template files of one folder: the packaged ones by default, or `directory` (RAG_PROMPTS_DIR)."""

    def __init__(self, directory: Path | None = None):
        if directory is None:
            self.root = resources.files(PACKAGE)
            self.where = f"package {PACKAGE}"
        else:
            self.root = Path(directory)
            self.where = str(directory)
            if not self.root.is_dir():
                raise TemplateError(f"prompts folder {directory} does not exist", hint="check RAG_PROMPTS_DIR")
        self.env = jinja2.Environment(
            loader=_Loader(self.root), undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False
        )

    def exists(self, name: str) -> bool:
        return self.root.joinpath(name).is_file()

    def require(self, *names: str) -> None:
        missing = [n for n in names if not self.exists(n)]
        if missing:
            raise TemplateError(f"missing template file(s) in {self.where}: {', '.join(missing)}")

    def render(self, name: str, **variables) -> str:
        try:
            return self.env.get_template(name).render(**variables).strip("\n")
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"prompt template {name} does not exist in {self.where}") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"prompt template {name}: {exc.message}") from exc

    def json(self, name: str):
        try:
            return json.loads(self.root.joinpath(name).read_text("utf-8"))
        except FileNotFoundError as exc:
            raise TemplateError(f"data file {name} does not exist in {self.where}") from exc
        except ValueError as exc:
            raise TemplateError(f"{name} in {self.where}: not valid JSON ({exc})") from exc

    def bytes(self, name: str) -> bytes:
        """A binary data file (fitted weights), read whole."""
        try:
            return self.root.joinpath(name).read_bytes()
        except FileNotFoundError as exc:
            raise TemplateError(f"data file {name} does not exist in {self.where}") from exc

    def examples(self, name: str) -> list[dict]:
        """Worked examples (a JSON list of objects) for few-shot prompts."""
        items = self.json(name)
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise TemplateError(f"{name} in {self.where}: expected a list of objects")
        return items


@dataclass(frozen=True)
class TemplateSet:
    """The files one answer mode uses; all must exist (checked when the mode is set up)."""

    system: str
    user: str
    grammar: str
    examples: str

    @classmethod
    def for_mode(cls, mode: str) -> TemplateSet:
        return cls(f"{mode}_system.txt", f"{mode}_user.txt", f"{mode}.gbnf", f"{mode}_examples.json")

    def check(self, templates: Templates) -> None:
        templates.require(self.system, self.user, self.grammar, self.examples)


def gbnf_literal(text: str) -> str:
    """A GBNF string literal; JSON escaping is a subset GBNF accepts."""
    return json.dumps(text, ensure_ascii=False)
