"""The T-SQL dialect the double parses with: sqlglot's ``tsql`` with ``ntext`` kept apart from ``text``.

sqlglot reads both ``text`` and ``ntext`` as TEXT; without the keyword, ``ntext`` parses as a user-defined
type named ``ntext`` (like ``hierarchyid``), so ``typemap`` can tell the two apart.
"""

from __future__ import annotations

from sqlglot.dialects.tsql import TSQL


class DoubleTsql(TSQL):
    class Tokenizer(TSQL.Tokenizer):
        KEYWORDS = {word: kind for word, kind in TSQL.Tokenizer.KEYWORDS.items() if word != "NTEXT"}


DIALECT = DoubleTsql
