import sys

from gateway.bench.cli import main

sys.exit(main())
