from nasbench.cli import main

raise SystemExit(main())
