import sys

from publisher.ops import http_probe

sys.exit(http_probe.main())
