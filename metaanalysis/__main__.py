import sys

from metaanalysis.cli import main

sys.exit(main())
