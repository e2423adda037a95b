"""Small, inspectable fitted models: logistic regressions over named signals, loaded from package data.

Which sentence holds the answer and whether to answer or refuse were hand-set weights and thresholds
tuned on one article; on SQuAD 2.0 articles nobody here wrote they scored below refusing everything.
Both decisions are now logistic regressions fitted by `python -m rag_eval.fit` on some SQuAD articles
and validated on others; the weights file (prompts/answering_model.json) names the data and the script.
A weight per named feature is something a reader can inspect: `contributions()` says which signal
pushed a decision, which is how a refusal explains itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rag.errors import TemplateError

MODEL_FILE = "answering_model.json"
FORMAT = 1


@dataclass(frozen=True)
class Logistic:
    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float = 0.5
    means: tuple[float, ...] = ()  # standardisation applied before the weights
    scales: tuple[float, ...] = ()
    require_names: bool = False  # refuse when a name of the question is missing, whatever the probability

    def __post_init__(self) -> None:
        if not self.means:
            object.__setattr__(self, "means", (0.0,) * len(self.features))
        if not self.scales:
            object.__setattr__(self, "scales", (1.0,) * len(self.features))

    @classmethod
    def from_dict(cls, data: dict, name: str) -> Logistic:
        try:
            features = tuple(data["features"])
            weights = tuple(float(w) for w in data["weights"])
            means = tuple(float(x) for x in data.get("means") or [0.0] * len(features))
            scales = tuple(float(x) or 1.0 for x in data.get("scales") or [1.0] * len(features))
            model = cls(
                features,
                weights,
                float(data["bias"]),
                float(data.get("threshold", 0.5)),
                means,
                scales,
                bool(data.get("require_names", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise TemplateError(f"{MODEL_FILE}: model {name!r} is malformed ({exc})") from exc
        if not (len(features) == len(weights) == len(model.means) == len(model.scales)):
            raise TemplateError(f"{MODEL_FILE}: model {name!r} has {len(features)} features but {len(weights)} weights")
        return model

    def _z(self, values: dict) -> list[float]:
        return [(float(values.get(f, 0.0)) - m) / s for f, m, s in zip(self.features, self.means, self.scales)]

    def logit(self, values: dict) -> float:
        return self.bias + sum(w * z for w, z in zip(self.weights, self._z(values)))

    def prob(self, values: dict) -> float:
        x = self.logit(values)
        return 1.0 / (1.0 + math.exp(-x)) if x > -50 else 0.0

    def contributions(self, values: dict) -> dict[str, float]:
        """Each feature's share of the logit: the signals behind a decision, strongest first."""
        parts = {f: w * z for f, w, z in zip(self.features, self.weights, self._z(values))}
        return dict(sorted(parts.items(), key=lambda kv: kv[1]))


@dataclass(frozen=True)
class AnsweringModel:
    selector: Logistic  # P(sentence holds the answer)
    answerer: Logistic | None  # P(the question is answerable), refuse below its threshold; None: the rules decide
    meta: dict

    @classmethod
    def load(cls, templates) -> AnsweringModel:
        data = templates.json(MODEL_FILE)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TemplateError(f"{MODEL_FILE}: expected an object with format {FORMAT}")
        try:
            return cls(
                Logistic.from_dict(data["selector"], "selector"),
                Logistic.from_dict(data["answerer"], "answerer"),
                # a "reader_answerer" (the retired RAG_READER=rerank's stacked model) in an older file is ignored
                {k: v for k, v in data.items() if k not in ("selector", "answerer", "reader_answerer")},
            )
        except KeyError as exc:
            raise TemplateError(f"{MODEL_FILE}: missing model {exc}") from exc
