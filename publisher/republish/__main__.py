import sys

from publisher.ops import republish

sys.exit(republish.main())
