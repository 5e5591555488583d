import sys

from minprune.cli import main

sys.exit(main())
