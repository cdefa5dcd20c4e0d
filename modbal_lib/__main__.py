import sys

from modbal_lib.cli import main

sys.exit(main())
