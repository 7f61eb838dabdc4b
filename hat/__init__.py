"""hat: hardware-aware neural architecture search for Transformers."""

import os

__version__ = "0.1.0"

# torch's CPU threads are OpenMP threads, which spin while they wait for work by default. On a machine whose cores
# other jobs also use, a spinning thread burns the time its sibling needs: measured on 2 cores with two background
# jobs, a 2-thread training update took 4,120 ms spinning and 642 ms waiting passively (1 thread: 1,194 ms;
# docs/benchmarks.md, "The quickstart under load"). Set before torch is imported (OpenMP reads it once); a value the
# user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
