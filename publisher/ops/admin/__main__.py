import sys

from publisher.ops.admin.cli import main

sys.exit(main())
