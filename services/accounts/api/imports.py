"""Bulk onboarding from a CSV request body, answered with a report per line."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.accounts.api.schemas import ImportReportPublic
from services.accounts.deps import Agency, Components, Runtime, agency_of, ctx_for
from services.accounts.handlers.imports import run_import
from shared.problems import BadRequest, Problem

router = APIRouter()
MAX_IMPORT_BYTES = 20 * 1024 * 1024
# what browsers and spreadsheet tools send a CSV file as
CSV_MEDIA_TYPES = {"text/csv", "application/csv", "text/plain", "application/vnd.ms-excel"}


class PayloadTooLarge(Problem):
    status, title, slug = 413, "Content too large", "too-large"


class UnsupportedMediaType(Problem):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


async def read_csv_body(request: Request) -> str:
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type and media_type not in CSV_MEDIA_TYPES:
        raise UnsupportedMediaType(f"send the file as text/csv, not {media_type}")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
        chunks.append(chunk)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("the file is not UTF-8 text") from exc


@router.post(
    "/imports",
    response_model=ImportReportPublic,
    openapi_extra={
        "requestBody": {"content": {"text/csv": {"schema": {"type": "string"}}}, "required": True}
    },
    responses={
        413: {"description": "the file is too large"},
        415: {"description": "not a CSV body"},
        422: {"description": "no usable header line"},
    },
)
async def import_accounts(
    request: Request, rt: Runtime, c: Components, principal: Agency
) -> JSONResponse:
    """Bulk onboarding from a CSV body (header line naming the columns; ``need_flags``
    separated by ``;``); answers with a per-line report. Idempotent on the national id."""
    report = await run_import(
        c.accounts,
        rt.uow,
        await read_csv_body(request),
        agency_of(principal),
        ctx_for(principal),
    )
    return JSONResponse(report.as_dict())
