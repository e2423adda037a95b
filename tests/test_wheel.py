"""A non-editable install answers: the built wheel holds the prompts, grammars, examples and fitted weights
(a wheel without prompts/ once failed only at the first answer). Slow: it builds a wheel, then answers with the
real models from it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from .conftest import ROOT, SEED_FILE

pytestmark = pytest.mark.slow

DATA = {"extractive.gbnf", "extractive_examples.json", "extractive_system.txt", "extractive_user.txt",
        "generative.gbnf", "generative_examples.json", "generative_system.txt", "generative_user.txt",
        "answering_model.json", "decider.json", "reader.safetensors", "reader_choice.gbnf", "opposites.tsv"}  # fmt: skip


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "repo"
    # build from a copy so the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "index", "eval", "*.egg-info", "build"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        text=True,
    )
    (path,) = out.glob("rag_chat-*.whl")
    return path


def test_wheel_holds_every_template_and_the_fitted_weights(wheel):
    names = {n.rsplit("/", 1)[-1] for n in zipfile.ZipFile(wheel).namelist() if n.startswith("rag/templates/")}
    assert DATA <= names


@pytest.mark.timeout(600)  # a wheel build, then `rag ingest` and `rag ask` from a cold start, one after the other
def test_installed_wheel_answers_a_question(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)  # a pure-Python wheel installs by unpacking
    work = tmp_path / "work"
    (work / "seeds").mkdir(parents=True)
    shutil.copy(SEED_FILE, work / "seeds")
    env = {**os.environ, "PYTHONPATH": str(site), "RAG_N_THREADS": "1"}
    probe = subprocess.run(
        [sys.executable, "-c", "import rag, rag.templates; print(rag.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.startswith(str(site))
    for args in (["ingest", "-q"], ["ask", "When did Brad Smith meet Wang Wentao?"]):
        out = subprocess.run(
            [sys.executable, "-m", "rag.cli", *args], cwd=work, env=env, capture_output=True, text=True, timeout=600
        )
        assert out.returncode == 0, out.stderr
    assert "December 6, 2023" in out.stdout
