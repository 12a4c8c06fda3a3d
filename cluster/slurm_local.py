"""`python -m buckle.cluster.slurm_local [NODES]`: a throwaway Slurm in a temp dir until
Ctrl-C. The cluster itself: buckle.core.devclusters.slurm."""
import sys

from buckle.core.devclusters.slurm import main

if __name__ == "__main__":
    sys.exit(main())
