"""Prompts, grammars, few-shot examples and fitted weights: data, installed as the package `rag.templates`.

Loaded with importlib.resources (rag/prompts.py), so a non-editable install finds them too.
"""
