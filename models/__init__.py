"""Small, fast networks for losslab's tasks, each built from ``(input_shape, num_outputs)``.

The task decides how many outputs its loss needs (10 class logits, one binary logit, a
mean and a log-variance...) and calls the model factory from ``configs/model/`` with the
dataset's input shape and that width, so any network here serves any task.
"""

from models.auto import auto_model
from models.cnn import CompactCNN
from models.outputs import OUTPUT_KINDS, IncompatibleModel, build_network, declared_output
from models.resnet import ResNet9

__all__ = [
    "OUTPUT_KINDS",
    "CompactCNN",
    "IncompatibleModel",
    "ResNet9",
    "auto_model",
    "build_network",
    "declared_output",
]
