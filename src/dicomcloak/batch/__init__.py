"""Many files at once: the per-file worker, the process pool and the run report."""
