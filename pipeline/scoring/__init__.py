"""The numbers: metrics from predictions, intervals and tests, tables, and a comparison of variants over seeds."""
