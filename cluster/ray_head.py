"""`python -m buckle.cluster.ray_head [NUM_CPUS]`: a private Ray head (token auth, dashboard
on 127.0.0.1, free ports) until Ctrl-C. The head itself: buckle.core.devclusters.ray."""
import sys

from buckle.core.devclusters.ray import main

if __name__ == "__main__":
    sys.exit(main())
