"""Issue 12: the seeded fault run (engine in ``run.py``; long runs via ``bench/faults.py``)."""
