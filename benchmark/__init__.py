"""TensionBench: reward models on the helpful-vs-harmless conflict.

The pipeline (prompt sets → adapter → engine → probe → metrics → results → validate → leaderboard)
is laid out one stage per module; see DESIGN.md for the contracts between them.
"""

__version__ = "0.1.0"
BENCHMARK_NAME = "TensionBench"
SCHEMA_VERSION = "1.0"
PROBE_VERSION = "1"
