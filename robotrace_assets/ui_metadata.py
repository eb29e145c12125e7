"""What the Dagster UI shows about every asset beside its data: owners, column schemas, and
code references for assets that have no function of their own.

Asset modules take their definition metadata from here, so the decorators stay short.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import (
    AnchorBasedFilePathMapping,
    AssetsDefinition,
    AssetSpec,
    BetaWarning,
    CodeReferencesMetadataValue,
    LocalFileCodeReference,
    TableColumn,
    TableSchema,
    link_code_references_to_git,
    with_source_code_references,
)

from robotrace_assets.columns import CATALOG_COLUMNS, Column

# Who answers for the pipeline's assets: shown on every asset and filterable in the catalog.
OWNERS = ["team:robotics-data"]
AssetsDef = AssetsDefinition | AssetSpec
COLUMN_SCHEMA = "dagster/column_schema"
CODE_REFERENCES = "dagster/code_references"


@contextmanager
def _beta_apis() -> Iterator[None]:
    """Dagster's code-reference API is marked beta; its warning on every load is only noise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        yield


def table_schema(columns: tuple[Column, ...]) -> TableSchema:
    return TableSchema(
        columns=[TableColumn(c.name, c.type, description=c.description or None) for c in columns]
    )


def column_schema(columns: tuple[Column, ...]) -> dict[str, Any]:
    """Definition metadata naming the columns of the Parquet an asset writes."""
    return {COLUMN_SCHEMA: table_schema(columns)}


def catalog_table(table: str) -> dict[str, Any]:
    """Definition metadata of an asset written as one catalog table: its column schema."""
    return column_schema(CATALOG_COLUMNS[table])


def code_reference(obj: Any, label: str) -> dict[str, Any]:
    """A code reference to where `obj` (a class or function) is defined, for assets that have
    no compute function of their own to point to (external assets)."""
    path = inspect.getsourcefile(obj)
    if path is None:
        return {}
    line = inspect.getsourcelines(obj)[1]
    with _beta_apis():
        reference = LocalFileCodeReference(file_path=path, line_number=line, label=label)
        return {CODE_REFERENCES: CodeReferencesMetadataValue(code_references=[reference])}


def with_code_references(assets: Sequence[AssetsDef]) -> list[AssetsDef]:
    """Every asset links to the function that computes it: a local file and line, or a link
    into the repository when ROBOTRACE_GIT_URL (and ROBOTRACE_GIT_BRANCH, default main) is set."""
    with _beta_apis():
        linked = with_source_code_references(assets)
        if git_url := os.environ.get("ROBOTRACE_GIT_URL"):
            linked = link_code_references_to_git(
                linked,
                git_url=git_url,
                git_branch=os.environ.get("ROBOTRACE_GIT_BRANCH", "main"),
                file_path_mapping=AnchorBasedFilePathMapping(
                    local_file_anchor=Path(__file__),
                    file_anchor_path_in_repository="robotrace_assets/ui_metadata.py",
                ),
            )
    # Both wrappers return each definition as the type it was given.
    return [a for a in linked if isinstance(a, AssetsDefinition | AssetSpec)]
