"""Which class builds each architecture a ``ModelConfig`` names."""

from __future__ import annotations

from pasrec.model.bert4rec import BERT4Rec
from pasrec.model.config import ModelConfig
from pasrec.model.diffurec import DiffuRec
from pasrec.model.interfaces import Recommender
from pasrec.model.meantime import Meantime
from pasrec.model.recommenders import DiffusionRecommender, Popularity, SequentialClassifier
from pasrec.model.tisasrec import TiSASRec

MODEL_CLASSES: dict[str, type[Recommender]] = {
    "diffusion": DiffusionRecommender,
    "sasrec": SequentialClassifier,
    "gru4rec": SequentialClassifier,
    "bert4rec": BERT4Rec,
    "tisasrec": TiSASRec,
    "meantime": Meantime,
    "diffurec": DiffuRec,
    "popularity": Popularity,
}


def build_model(config: ModelConfig) -> Recommender:
    return MODEL_CLASSES[config.architecture](config)
