from publisher.web.server import main

raise SystemExit(main())
