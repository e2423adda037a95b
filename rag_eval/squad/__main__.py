"""`python -m rag_eval.squad FILE --out DIR ...`: the SQuAD evaluation without the `rag` CLI around it."""

import sys

from rag_eval.squad.running import main

sys.exit(main())
