"""`python -m raceway_server` is the `raceway` command."""

from raceway_server.cli import main

raise SystemExit(main())
