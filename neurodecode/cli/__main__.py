import sys

from neurodecode.cli.main import main

sys.exit(main())
