"""Prompts and grammars are files in prompts/, rendered with Jinja2 that fails on a missing variable."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import jinja2


class TemplateError(ValueError):
    pass


@lru_cache(maxsize=8)
def _environment(directory: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


class Templates:
    def __init__(self, directory: Path):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise TemplateError(f"prompts folder {self.directory} does not exist")

    def render(self, name: str, **variables) -> str:
        try:
            template = _environment(str(self.directory)).get_template(name)
            return template.render(**variables).strip("\n")
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(f"prompt template {self.directory / name} does not exist") from exc
        except jinja2.UndefinedError as exc:
            raise TemplateError(f"prompt template {name}: {exc.message}") from exc


    def examples(self, name: str) -> list[dict]:
        """Worked examples (a JSON list) for few-shot prompts; a missing file means none."""
        path = self.directory / name
        if not path.exists():
            return []
        try:
            items = json.loads(path.read_text("utf-8"))
        except ValueError as exc:
            raise TemplateError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(items, list) or not all(isinstance(x, dict) for x in items):
            raise TemplateError(f"{path}: expected a list of objects")
        return items


def gbnf_literal(text: str) -> str:
    """A GBNF string literal; JSON escaping is a subset GBNF accepts."""
    return json.dumps(text, ensure_ascii=False)
