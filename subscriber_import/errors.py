"""The exception family of subscriber_import: a refused file, with a reason people can act on."""

from __future__ import annotations

from typing import Any

from broadcast.errors import LoaError


class ImportRejected(LoaError):
    """The whole file was refused and nothing changed; `details` names the offending values.

    `import_id` is set by the service once the refusal is recorded as an Import row.
    """

    code = "import_rejected"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}
        self.import_id: int | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses the pipe from the import's child process with its details intact.
        return (_rebuild, (type(self), self.code, self.message, self.details, self.import_id))


class UnknownCarrier(ImportRejected):
    code = "unknown_carrier"


class FileTooLarge(ImportRejected):
    code = "file_too_large"


class TooManyRows(ImportRejected):
    code = "too_many_rows"


class EmptyFile(ImportRejected):
    code = "empty_file"


class WrongFileType(ImportRejected):
    """The content is not what the extension says (a CSV named .xlsx, binary named .csv)."""

    code = "wrong_file_type"


class MalformedFile(ImportRejected):
    """The file's structure is broken part-way (a row with too many fields, a bad workbook)."""

    code = "malformed_file"


class SheetNotFound(ImportRejected):
    code = "sheet_not_found"


class UnknownLayout(ImportRejected):
    """No column could be mapped to a required role; details list found and expected names."""

    code = "unknown_layout"


class NoValidRows(ImportRejected):
    """Refused rather than replace a carrier's list with an empty one."""

    code = "no_valid_rows"


class ListShrinks(ImportRejected):
    """The new list would cut the carrier's active list by more than imports.max_shrink: one
    wrong file must not silently drop most of a carrier's people. Details carry both counts;
    the uploader may confirm (allow_shrink)."""

    code = "list_shrinks"


class ListChanged(ImportRejected):
    """A confirmation named the list it meant to replace, and another import has replaced that
    list since (a stale page, a second click): the uploader must look again."""

    code = "list_changed"


class TooManyCells(ImportRejected):
    """A sheet spans more cells (rows x columns) than imports.max_cells: the reader would build
    the whole rectangle in memory, however few cells hold data."""

    code = "too_many_cells"


class UnsafeFile(ImportRejected):
    """A workbook that unpacks to far more than its size (a zip bomb) or declares XML entities."""

    code = "unsafe_file"


class ImportFailed(ImportRejected):
    """The import's child process was stopped (time or memory limit) or died; nothing of it
    was written. `code` is one of out_of_memory, time_limit, import_stopped."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message, details)
        self.code = code


def _rebuild(
    cls: type[ImportRejected],
    code: str,
    message: str,
    details: dict[str, Any],
    import_id: int | None,
) -> ImportRejected:
    exc = cls.__new__(cls)
    ImportRejected.__init__(exc, message, details)
    exc.code = code
    exc.import_id = import_id
    return exc
