"""python -m tools.colab_sim [02 05 ... | all] | t4 [01 02 ... | all]: see tools/colab_sim/cli.py."""

import sys

from tools.colab_sim.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
