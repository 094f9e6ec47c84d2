"""Example plugins shipped with the benchmark (entry-point group `tension_bench.adapters`); they
show how a third-party adapter is written. See `benchmark.models.plugins` for the protocol."""
