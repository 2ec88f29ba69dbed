from rmteacher.cli import main

raise SystemExit(main())
