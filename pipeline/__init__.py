"""handwriting-lab: a DVC + Hydra + MLflow pipeline that trains and compares CNNs on handwritten characters."""

from pipeline.core.tensorflow_startup import quiet_tensorflow_startup

# Here, as every `python -m pipeline.<name>` imports this first: before anything imports TensorFlow.
quiet_tensorflow_startup()
