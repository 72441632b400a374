"""The data: raw IDX files fetched and verified, the prepared dataset format, and images made MNIST-like."""
