"""losslab's tasks: one LightningModule per problem type over the shared :class:`TaskCore`.

Each task feeds any compatible loss of the registry: it turns the network's outputs and
the dataset's targets into the kinds the loss's spec names (:mod:`tasks.conversions`)
and refuses, before any data is read, a loss it cannot feed (:mod:`tasks.binding`).
"""

from tasks.base import SupervisedTask, TaskCore
from tasks.binding import (
    IncompatibleData,
    IncompatibleLoss,
    LossBinding,
    bind_loss,
    compatible_losses,
)
from tasks.classification import ClassificationTask
from tasks.data_info import DataInfo
from tasks.metric_learning import MetricLearningTask
from tasks.multilabel import MultilabelTask
from tasks.ranking import RankingTask
from tasks.regression import RegressionTask

__all__ = [
    "ClassificationTask",
    "DataInfo",
    "IncompatibleData",
    "IncompatibleLoss",
    "LossBinding",
    "MetricLearningTask",
    "MultilabelTask",
    "RankingTask",
    "RegressionTask",
    "SupervisedTask",
    "TaskCore",
    "bind_loss",
    "compatible_losses",
]
