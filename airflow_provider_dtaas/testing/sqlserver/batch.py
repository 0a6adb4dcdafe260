"""Splitting a T-SQL batch into statements. T-SQL does not need ``;`` between statements, so a new
statement also starts at a statement keyword at parenthesis depth 0 unless it continues the current
one (``INSERT ... SELECT``, ``UNION SELECT``, ``UPDATE ... SET``, ``IF cond stmt`` ...)."""

from __future__ import annotations

from sqlglot.dialects.tsql import TSQL
from sqlglot.errors import TokenError
from sqlglot.tokens import Token, TokenType  # type: ignore[attr-defined]

from airflow_provider_dtaas.testing.sqlserver.errors import SqlServerError

STARTERS = frozenset(
    {
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "TRUNCATE", "SET", "USE",
        "BEGIN", "COMMIT", "ROLLBACK", "IF", "DECLARE", "EXEC", "EXECUTE", "PRINT", "MERGE", "SAVE",
    }
)  # fmt: skip
_SET_OPERATORS = frozenset({"UNION", "ALL", "EXCEPT", "INTERSECT", "("})


def _word(token: Token) -> str:
    if token.token_type in (TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.IDENTIFIER):
        return ""
    return token.text.upper()


def _continues(first: str, words: list[str], word: str, body_taken: bool, following: str = "") -> bool:
    """Whether ``word`` (a statement keyword) belongs to the statement that began with ``first``."""
    previous = words[-1] if words else ""
    if previous in _SET_OPERATORS:
        return True
    if previous == "ON" and word in ("DELETE", "UPDATE"):
        return True  # ON DELETE CASCADE
    if previous == "WITH" and word == "ROLLBACK":
        return True  # ALTER DATABASE ... SET ... WITH ROLLBACK IMMEDIATE
    if first == "IF":
        return not body_taken
    if word == "SELECT":
        return first in ("INSERT", "WITH", "CREATE") and "SELECT" not in words
    if word == "SET":
        return first in ("UPDATE", "MERGE", "ALTER") and "SET" not in words  # ALTER DATABASE x SET ...
    if word in ("INSERT", "UPDATE", "DELETE"):
        return first in ("WITH", "MERGE")
    if word == "DROP":
        return first == "ALTER"
    if word == "ALTER":
        return first == "ALTER" and following == "COLUMN"  # ALTER TABLE t ALTER COLUMN c ...
    return False


def split_statements(sql: str) -> list[str]:
    """The statements of a batch, as slices of the original text."""
    try:
        tokens = TSQL().tokenize(sql)
    except TokenError as error:
        raise SqlServerError(105, f"Unclosed quotation mark or bracket in the batch: {error}") from error
    statements: list[str] = []
    start: int | None = None
    end = 0
    first = ""
    words: list[str] = []
    depth = 0
    body_taken = False

    def close() -> None:
        nonlocal start, first, words, body_taken
        if start is not None:
            statements.append(sql[start : end + 1].strip())
        start, first, words, body_taken = None, "", [], False

    for position, token in enumerate(tokens):
        if token.token_type == TokenType.SEMICOLON and depth == 0:
            close()
            continue
        word = _word(token)
        outer = depth == 0  # only the words outside parentheses tell where a statement ends
        if outer and start is not None and word in STARTERS:
            following = _word(tokens[position + 1]) if position + 1 < len(tokens) else ""
            if not _continues(first, words, word, body_taken, following):
                close()
            elif first == "IF" and not body_taken and words[-1:] != ["("]:
                body_taken = True
        if token.token_type == TokenType.L_PAREN:
            depth += 1
        elif token.token_type == TokenType.R_PAREN:
            depth = max(0, depth - 1)
        if start is None:
            start, first = token.start, word
        if outer:  # a CTE's SELECT is not the SELECT of WITH ... SELECT
            words.append("(" if token.token_type == TokenType.L_PAREN else word)
        elif depth == 0:  # the parenthesis back to the outside
            words.append(")")
        end = token.end
    close()
    return [statement for statement in statements if statement]
