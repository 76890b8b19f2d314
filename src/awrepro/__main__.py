import sys

from awrepro.cli import main

sys.exit(main())
