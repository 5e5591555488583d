import sys

from minprune.commands.cli import main

sys.exit(main())
