import sys

from publisher.ops import admin

sys.exit(admin.main())
