"""handwriting-lab: a DVC + Hydra + MLflow pipeline that trains and compares CNNs on handwritten characters."""
