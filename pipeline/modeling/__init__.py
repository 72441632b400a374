"""The networks: architectures and augmentation by name, how they are trained, saved, served and asked."""
