"""The TensionBench leaderboard app (Gradio). Torch-free: it reads results documents only."""
