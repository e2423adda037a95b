"""GBNF grammars checked by llama.cpp itself, without loading a model's weights.

`LlamaGrammar.from_string` only keeps the text (llama.cpp parses it when a generation starts), so a test
that builds one checks nothing. `Grammar` goes through llama.cpp's grammar sampler instead: building one
parses the text (a broken grammar raises `ValueError`), and `accepts(text)` feeds `text` token by token
through the sampler, as a constrained generation would, then asks whether the grammar may end there.
The tokens come from the bundled GGUF's vocabulary, loaded vocab-only (about 0.1 s, no tensors).
"""

from __future__ import annotations

import ctypes
import functools
import math


@functools.cache
def _vocab():
    import llama_cpp

    from rag.generation import route_llama_logs, smollm2_path

    route_llama_logs()  # llama.cpp's lines go to the `llama.cpp` logger, not to stderr
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(smollm2_path()).encode(), params)
    if not model:
        raise RuntimeError(f"llama.cpp could not read the vocabulary of {smollm2_path()}")
    return model, llama_cpp.llama_model_get_vocab(model)  # the model is kept: the vocabulary lives in it


def _tokens(vocab, text: str) -> list[int]:
    import llama_cpp

    data = text.encode("utf-8")
    out = (llama_cpp.llama_token * (len(data) + 8))()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), out, len(out), False, False)
    assert n >= 0, f"could not tokenize {text!r}"
    return list(out[:n])


class Grammar:
    def __init__(self, text: str, root: str = "root"):
        import llama_cpp

        self.text, self.root = text, root
        self.vocab = _vocab()[1]
        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, text.encode("utf-8"), root.encode("utf-8"))
        if not sampler:
            raise ValueError("llama.cpp refused the grammar (its log says why)")
        llama_cpp.llama_sampler_free(sampler)

    def _allowed(self, sampler, token: int) -> bool:
        """Whether the grammar, in its current state, lets `token` be generated next."""
        import llama_cpp

        candidates = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
        array = llama_cpp.llama_token_data_array(candidates, 1, -1, False)
        llama_cpp.llama_sampler_apply(sampler, ctypes.byref(array))
        return not math.isinf(candidates[0].logit)

    def accepts(self, text: str) -> bool:
        """Whether a generation constrained by this grammar could produce exactly `text` and stop."""
        import llama_cpp

        sampler = llama_cpp.llama_sampler_init_grammar(self.vocab, self.text.encode("utf-8"), self.root.encode("utf-8"))
        try:
            for token in _tokens(self.vocab, text):
                if not self._allowed(sampler, token):
                    return False
                llama_cpp.llama_sampler_accept(sampler, token)
            return self._allowed(sampler, llama_cpp.llama_vocab_eos(self.vocab))  # the grammar may end here
        finally:
            llama_cpp.llama_sampler_free(sampler)
