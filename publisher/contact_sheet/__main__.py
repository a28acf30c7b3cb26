import sys

from publisher.ops import contact_sheet

sys.exit(contact_sheet.main())
