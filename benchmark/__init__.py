"""TensionBench: reward models on the helpful-vs-harmless conflict.

The pipeline (prompt sets → adapter → engine → probe → metrics → results → validate → leaderboard)
is laid out one stage per module; see DESIGN.md for the contracts between them.
"""

__version__ = "0.2.0"
BENCHMARK_NAME = "TensionBench"
SCHEMA_VERSION = "2.0"
PROBE_VERSION = "2"
