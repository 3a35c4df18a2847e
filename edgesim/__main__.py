"""``python -m edgesim`` runs the command line."""

from edgesim.cli import main

raise SystemExit(main())
