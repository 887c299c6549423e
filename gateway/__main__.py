"""`python -m gateway` is the same as the `floorgate` command."""

from gateway.cli import main

raise SystemExit(main())
