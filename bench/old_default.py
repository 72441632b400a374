"""The old default, which #20's benchmarks measure the new one against: one definition for all of them."""

MODEL = "cnn3_bn"  # the default network until #20
AUGMENT = "standard"  # the default policy until #20
EPOCHS = 12  # the default training's epochs until #20
TRAINING_IMAGES = 54_000  # MNIST's training part, after the 10% validation split


def overrides(epochs: int = EPOCHS) -> list[str]:
    """The old default as Hydra overrides of today's configuration."""
    return [f"model={MODEL}", f"augment={AUGMENT}", f"train.epochs={epochs}"]
