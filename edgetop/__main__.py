from edgetop.tui.cli import main

raise SystemExit(main())
