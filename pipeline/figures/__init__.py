"""The pictures: every figure and PDF, drawn from numbers computed elsewhere; matplotlib is imported here alone."""
