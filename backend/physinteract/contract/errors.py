"""The one error type of the contract."""

from __future__ import annotations

from pathlib import Path


class ContractError(ValueError):
    """A job or cache folder does not follow the contract.

    Attributes:
        file: the file at fault (path as given, or the folder when a file is missing).
        field: the manifest field or array name at fault ("" when the whole file is).
        expected: what the contract asks for, in words.
        got: what was found, in words.
    """

    def __init__(self, file: str | Path, field: str, expected: str, got: str) -> None:
        self.file = str(file)
        self.field = field
        self.expected = expected
        self.got = got
        where = f"{self.file}: field '{field}'" if field else self.file
        super().__init__(f"{where}: expected {expected}, got {got}")
