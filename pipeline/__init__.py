"""handwriting-lab: a DVC + Hydra + MLflow pipeline that trains and compares CNNs on handwritten characters."""

import os

# TensorFlow's C++ start-up chatter (CUDA probes, oneDNN notices) buries the stage's own output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
