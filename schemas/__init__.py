"""JSON schemas of TensionBench (results documents, prompt-set items, the verified list): shipped
inside the package as `benchmark.schemas` and read with importlib.resources."""
